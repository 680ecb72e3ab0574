package handlers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/presence/presence/presence"
)

// StreamOptions are the per-stream settings of the SSE endpoints.
type StreamOptions struct {
	// Identity tells streams apart as people.
	Identity IdentityOptions
	// Retry is the reconnect delay sent to clients in the retry: field.
	Retry time.Duration
	// WriteTimeout is how long one write may stall before the client is cut
	// off; it replaces a server-wide WriteTimeout, which would cut streams.
	WriteTimeout time.Duration
	// MaxWatch is the most rooms one stream may watch (GET /watch,
	// ?watch=).
	MaxWatch int
	// TrustedProxies are the CIDRs (10.0.0.0/8) or addresses of the peers
	// whose X-Forwarded-For or Forwarded header names the client (see
	// clientAddr); from others, the peer is the client.
	TrustedProxies []string

	proxies []netip.Prefix // TrustedProxies parsed, by Options.validate
}

// handleStream serves GET /events and GET /rooms/{room}/events: the room's
// count at once, then every change, coalesced, and heartbeats; with
// ?watch=a,b, also the presence events of rooms a and b (see handleWatch). A HEAD is
// checked as a GET is (room name, token) and answered with the stream's
// status and headers, without joining the room.
func handleStream(b *Broadcaster, opts StreamOptions, m *Metrics, log *slog.Logger) http.HandlerFunc {
	retry := []byte(fmt.Sprintf("retry: %d\n\n", opts.Retry.Milliseconds()))
	heads := newStreamHeaders()
	return func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		source, conn := streamClient(r, opts.proxies)
		room := presence.DefaultRoom
		if rctx := chi.RouteContext(r.Context()); rctx != nil && rctx.RoutePattern() != "/events" {
			room = chi.URLParam(r, "room")
		}
		if err := presence.ValidateRoom(room); err != nil {
			writeJoinError(w, err)
			return
		}
		member, expires, ok := identify(w, r, opts.Identity, room)
		if !ok {
			m.refused.WithLabelValues("unauthorized").Inc()
			return
		}
		watched, members, ok := streamWatch(w, r, opts, room) // ?watch=
		if !ok {
			return
		}
		if b.answeredUnopened(w, r, heads, conn, m) {
			return
		}
		// The hub's way to end the stream (a disconnect through the
		// server API): a stream that will be detached is ended through
		// its connection, the others through their request's context.
		var d *detached
		var end func()
		if detachable(r) {
			d = b.newDetached(room, opts.WriteTimeout, log)
			end = d.kick
		} else {
			var release func()
			r, end, release = disconnectable(r)
			defer release()
		}
		follow := member.Signed // signed-in streams follow the members
		var wt *presence.Watch  // watched before joining, so that a refused watch is never a join and a leave
		var watchFirst [][]byte
		if watched != nil {
			wo := presence.WatchOptions{Members: members, Source: source}
			if d != nil {
				wo.Woken = d.woken
			}
			var err error
			if wt, watchFirst, err = b.hub.Watch(watched, wo); err != nil {
				refused(w, m, err)
				return
			}
			if d != nil {
				d.watch = &watchState{wt: wt} // d closes it
			} else {
				defer wt.Close()
			}
		}
		st, joined, err := b.hub.JoinAs(room, member, presence.JoinOptions{Members: follow, Source: source, End: end})
		if err != nil {
			if d != nil && wt != nil {
				wt.Close()
			}
			refused(w, m, err)
			return
		}
		m.connects.Inc()
		first := append(make([]byte, 0, len(retry)+len(joined.Events.Presence)+64), retry...)
		first = appendEvent(first, eventCount, joined.Events.Count)
		first = appendEvent(first, eventPresence, joined.Events.Presence) // with the members if follow
		first = appendWatched(first, watchFirst)
		watchFirst = nil
		fs := followState{cur: joined.Update, sentCount: joined.Events.Count, sentPres: joined.Events.Presence, members: follow, memberSeq: joined.Seq, whole: true}
		if d != nil {
			b.detach(w, r, d, st, detachment{heads: heads, first: first, fs: fs, expiry: tokenExpiry(member.Signed, expires, opts.Identity.leeway())})
			return // the stream is d's now
		}
		defer st.Leave()
		var exp expiry
		if member.Signed {
			var cancel context.CancelFunc
			r, exp, cancel = expiring(r, expires, opts.Identity.leeway())
			defer cancel()
		}

		// X-Accel-Buffering: no, or nginx buffers the stream. A stream
		// ends only when its connection does, so over HTTP/1.1 its body is
		// delimited by the close rather than chunked, as the SSE
		// specification suggests and net/http supports: each event is then
		// one write of its own bytes, with no chunk framing to format and
		// send.
		heads.set(w.Header(), r.ProtoMajor == 1)
		w.WriteHeader(http.StatusOK)

		out := newStreamWriter(w, opts.WriteTimeout)
		err = b.follow(r.Context(), out, st, streamStart{first: first, fs: fs, expiry: exp, watch: wt})

		ended(b, out, r, err, room, log, m, conn, start)
	}
}

// answeredUnopened answers a stream request that must open nothing, and
// reports whether it did: a HEAD gets what a GET would before its first
// event, but nobody joins (a HEAD opens no stream and counts no one); a
// request the client cancelled meanwhile (over HTTP/2, RST_STREAM right
// after HEADERS) makes no join and leave that a room would see for
// nothing.
func (b *Broadcaster) answeredUnopened(w http.ResponseWriter, r *http.Request, heads streamHeaders, conn *connState, m *Metrics) bool {
	if r.Method == http.MethodHead {
		heads.set(w.Header(), false)
		w.WriteHeader(http.StatusOK)
		return true
	}
	if r.Context().Err() != nil && b.closing.Err() == nil {
		cancelledEarly(w, conn, m)
		return true
	}
	return false
}

// streamClient returns a stream request's source, for the per-source
// bounds, and its connection's state (a refused connection never gets
// here: guardConns).
func streamClient(r *http.Request, proxies []netip.Prefix) (string, *connState) {
	source := ""
	if client, _, ok := clientAddr(r, proxies); ok {
		source = sourceKey(client)
	}
	return source, guardedConn(r, proxies)
}

// refused answers a stream that the hub refused, and counts the refusal.
func refused(w http.ResponseWriter, m *Metrics, err error) {
	if reason := writeJoinError(w, err); reason != "" {
		m.refused.WithLabelValues(reason).Inc()
	}
}

// expiring makes r's context end when a signed-in stream's token does
// (see expiry.go), and returns the expiry.
func expiring(r *http.Request, expires time.Time, leeway time.Duration) (*http.Request, expiry, context.CancelFunc) {
	exp := newExpiry(time.Now(), expires, leeway)
	ctx, cancel := context.WithDeadline(r.Context(), exp.endsAt)
	return r.WithContext(ctx), exp, cancel
}

// ended counts a stream's end by its reason, and notes on its connection
// a stream the client ended early (see conn.go).
func ended(b *Broadcaster, out *streamWriter, r *http.Request, err error, room string, log *slog.Logger, m *Metrics, conn *connState, start time.Time) {
	reason := endReason(b, out, r, err, room, log)
	m.disconnect.WithLabelValues(reason).Inc()
	if now := time.Now(); reason == reasonClient && now.Sub(start) < earlyEnd {
		conn.endedEarly(now)
	}
}

// endReason says why a stream ended, for the disconnect metric. It is a
// function of its own so that its locals (the log calls' arguments) are
// not in the frame of the stream's handler, which stays on the stack for
// the stream's whole life: every byte there is a byte per stream.
func endReason(b *Broadcaster, out *streamWriter, r *http.Request, err error, room string, log *slog.Logger) string {
	switch {
	case out.evicted():
		log.Debug("stream evicted: write stalled", "room", room, "remote", r.RemoteAddr, "err", err)
		return reasonEvicted
	case connOf(r).peerTimedOut():
		// The kernel cut a peer that took nothing for TCP_USER_TIMEOUT,
		// often before a write stalled for the whole write timeout: a
		// stalled reader too.
		log.Debug("stream evicted: peer took nothing for the TCP user timeout", "room", room, "remote", r.RemoteAddr)
		return reasonEvicted
	case disconnected(r):
		return reasonDisconnected
	case b.closing.Err() != nil:
		return reasonShutdown
	case errors.Is(r.Context().Err(), context.DeadlineExceeded):
		return reasonExpired
	}
	return reasonClient
}
