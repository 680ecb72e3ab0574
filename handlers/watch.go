package handlers

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/presence/presence/auth"
	"github.com/presence/presence/presence"
)

// handleWatch serves GET /watch?rooms=a,b,c: a stream in no room, counted
// in none, that gets each room's presence event at once and then whenever
// the room's counts change, coalesced as the room's own streams get them
// (see presence.Watch). It has the heartbeats, retry field and headers of
// a room's stream; a HEAD is checked as a GET is and opens nothing.
func handleWatch(b *Broadcaster, opts StreamOptions, m *Metrics, log *slog.Logger) http.HandlerFunc {
	retry := []byte(fmt.Sprintf("retry: %d\n\n", opts.Retry.Milliseconds()))
	heads := newStreamHeaders()
	return func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		source, conn := streamClient(r, opts.proxies)
		claims, signed, ok := requestClaims(w, r, opts.Identity)
		if !ok {
			m.refused.WithLabelValues("unauthorized").Inc()
			return
		}
		if _, given := r.URL.Query()["rooms"]; !given {
			writeError(w, http.StatusBadRequest, "rooms is missing: GET /watch?rooms=a,b,c")
			return
		}
		rooms, members, ok := watchRequest(w, r, opts, "rooms", "", claims, signed)
		if !ok {
			return
		}
		if b.answeredUnopened(w, r, heads, conn, m) {
			return
		}
		// The hub's way to end the stream, and with a detached stream its
		// way to wake it (see handleStream).
		wo := presence.WatchOptions{Members: members, Alone: true, Source: source, User: memberID(claims, signed)}
		var d *detached
		if detachable(r) {
			d = b.newDetached("", opts.WriteTimeout, log)
			wo.End, wo.Woken = d.kick, d.woken
		} else {
			var release func()
			r, wo.End, release = disconnectable(r)
			defer release()
		}
		wt, first, err := b.hub.Watch(rooms, wo)
		if err != nil {
			refused(w, m, err)
			return
		}
		if d != nil {
			m.connects.Inc()
			d.watch = &watchState{wt: wt, alone: true, hb: wt.Heartbeats()}
			first := appendWatched(append([]byte(nil), retry...), first)
			b.detach(w, r, d, nil, detachment{heads: heads, first: first, expiry: tokenExpiry(signed, claims.Expires, opts.Identity.leeway())})
			return // the stream is d's now
		}
		defer wt.Close()
		m.connects.Inc()
		var exp expiry
		if signed {
			var cancel context.CancelFunc
			r, exp, cancel = expiring(r, claims.Expires, opts.Identity.leeway())
			defer cancel()
		}
		heads.set(w.Header(), r.ProtoMajor == 1)
		w.WriteHeader(http.StatusOK)
		out := newStreamWriter(w, opts.WriteTimeout)
		err = b.followWatch(r.Context(), out, wt, appendWatched(append([]byte(nil), retry...), first), exp)
		ended(b, out, r, err, "", log, m, conn, start)
	}
}

// watchRequest reads the rooms a stream watches from the query parameter
// param, and checks them: at most opts.MaxWatch, each a valid room named
// once, not own (the stream's own room, if any), and each private room
// opened by the request's token (401 without one, 403 with one that does
// not open it, as for a stream of the room). It returns the rooms (nil if
// param is not given) and which of them the stream may follow the members
// of: those its token opens. Else it answers 400, 401 or 403 and returns
// ok false.
func watchRequest(w http.ResponseWriter, r *http.Request, opts StreamOptions, param, own string, claims auth.Claims, signed bool) (rooms []string, members func(string) bool, ok bool) {
	values, given := r.URL.Query()[param]
	if !given {
		return nil, nil, true
	}
	rooms, problem := parseWatch(strings.Join(values, ","), param, own, opts.MaxWatch)
	if problem != "" {
		writeError(w, http.StatusBadRequest, problem)
		return nil, nil, false
	}
	for _, room := range rooms {
		switch {
		case !opts.Identity.private(room):
		case !signed:
			writeError(w, http.StatusUnauthorized, "room "+room+" needs a token ("+tokenCarriers+")")
			return nil, nil, false
		case !claims.Allows(room):
			writeError(w, http.StatusForbidden, "this token does not open room "+room)
			return nil, nil, false
		}
	}
	if signed {
		members = claims.Allows
	}
	return rooms, members, true
}

// streamWatch is watchRequest for ?watch= on the stream of room.
func streamWatch(w http.ResponseWriter, r *http.Request, opts StreamOptions, room string) (rooms []string, members func(string) bool, ok bool) {
	if r.URL.RawQuery == "" || !r.URL.Query().Has("watch") {
		return nil, nil, true
	}
	claims, signed, ok := requestClaims(w, r, opts.Identity)
	if !ok {
		return nil, nil, false
	}
	return watchRequest(w, r, opts, "watch", room, claims, signed)
}

// parseWatch splits a comma-separated list of rooms, and says what is
// wrong with it ("" if nothing): empty, more than max rooms, a bad name, a
// room named twice, or the stream's own room (own), whose presence events
// the stream gets already.
func parseWatch(list, param, own string, max int) ([]string, string) {
	if list == "" {
		return nil, param + " is empty: name at least one room"
	}
	if n := strings.Count(list, ",") + 1; n > max {
		return nil, param + " names " + strconv.Itoa(n) + " rooms; at most " + strconv.Itoa(max) + " may be watched over one stream"
	}
	rooms := strings.Split(list, ",")
	seen := make(map[string]bool, len(rooms))
	for _, room := range rooms {
		switch {
		case presence.ValidateRoom(room) != nil:
			return nil, fmt.Sprintf("room %q in %s: %s", room, param, presence.RoomRule)
		case seen[room]:
			return nil, fmt.Sprintf("room %q is repeated in %s", room, param)
		case room == own:
			return nil, fmt.Sprintf("room %q in %s is the stream's own room, whose presence events it gets already", room, param)
		}
		seen[room] = true
	}
	return rooms, ""
}

// appendWatched appends a presence event per data.
func appendWatched(b []byte, data [][]byte) []byte {
	for _, d := range data {
		b = appendEvent(b, eventPresence, d)
	}
	return b
}

// followWatch sends first, then the watched rooms' changes and the
// heartbeats, to a stream in no room, until ctx ends or a write fails.
func (b *Broadcaster) followWatch(ctx context.Context, out *streamWriter, wt *presence.Watch, first []byte, exp expiry) error {
	if err := sendFirst(out, first, b.metrics); err != nil {
		return err
	}
	hb := wt.Heartbeats()
	done, wake := ctx.Done(), wt.Wake()
	warn, stopWarn := exp.warning() // nil unless signed in
	defer stopWarn()
	for {
		select {
		case <-done:
			return nil
		case <-wake:
		case <-warn:
			warn = nil
			if err := exp.warn(out); err != nil {
				return err
			}
			continue
		}
		b.writeWatched(out, wt)
		if n := wt.Heartbeats(); n != hb {
			hb = n
			out.write(heartbeatLine)
		}
		if err := out.flush(); err != nil {
			return err
		}
	}
}

// writeWatched writes what the watched rooms have for the stream since it
// was last woken: per room, its presence event, and with its members its
// join and leave events. Nothing is flushed.
func (b *Broadcaster) writeWatched(out *streamWriter, wt *presence.Watch) {
	buf := b.frames.Get().(*[]byte)
	p, n := drainWatch((*buf)[:0], wt)
	if len(p) > 0 {
		out.write(p)
		b.countDeliveries(n)
	}
	*buf = p
	b.frames.Put(buf)
}

// drainWatch appends what the watched rooms have for the stream since it
// was last woken (Watch.Drain), and returns how many rooms' events.
func drainWatch(p []byte, wt *presence.Watch) ([]byte, int) {
	n := 0
	wt.Drain(func(ev presence.WatchEvent) {
		p = appendWatchEvent(p, ev)
		n++
	})
	return p, n
}

// appendWatchEvent appends a watched room's presence event and, with its
// members, their join and leave events.
func appendWatchEvent(p []byte, ev presence.WatchEvent) []byte {
	p = appendEvent(p, eventPresence, ev.Presence)
	for _, d := range ev.Joined {
		p = appendEvent(p, eventJoin, d)
	}
	for _, d := range ev.Left {
		p = appendEvent(p, eventLeave, d)
	}
	return p
}

// streamHeaders are the header values of every stream, shared by all of
// them (net/http only reads them), so that a stream allocates none.
type streamHeaders struct {
	eventStream, noCache, no, identity []string
}

func newStreamHeaders() streamHeaders {
	return streamHeaders{eventStream: []string{"text/event-stream"}, noCache: []string{"no-cache"}, no: []string{"no"}, identity: []string{"identity"}}
}

// set sets a stream's headers; http1 for a stream over HTTP/1.1, whose
// body is delimited by the connection's close (see handleStream).
func (s streamHeaders) set(h http.Header, http1 bool) {
	h["Content-Type"], h["Cache-Control"], h["X-Accel-Buffering"] = s.eventStream, s.noCache, s.no
	if http1 {
		h["Transfer-Encoding"] = s.identity
	}
}
