package handlers

import (
	"fmt"
	"log/slog"
	"net/http"
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
}

// handleStream serves GET /events and GET /rooms/{room}/events: the room's
// count at once, then every change, coalesced, and heartbeats.
func handleStream(b *Broadcaster, opts StreamOptions, m *Metrics, log *slog.Logger) http.HandlerFunc {
	retry := []byte(fmt.Sprintf("retry: %d\n\n", opts.Retry.Milliseconds()))
	// Header values shared by every stream (net/http only reads them), so
	// that a stream allocates none of its own.
	eventStream, noCache, no := []string{"text/event-stream"}, []string{"no-cache"}, []string{"no"}
	identity := []string{"identity"}
	return func(w http.ResponseWriter, r *http.Request) {
		room := presence.DefaultRoom
		if rctx := chi.RouteContext(r.Context()); rctx != nil && rctx.RoutePattern() != "/events" {
			room = chi.URLParam(r, "room")
		}
		if err := presence.ValidateRoom(room); err != nil {
			writeJoinError(w, err)
			return
		}
		member, ok := identify(w, r, opts.Identity, room)
		if !ok {
			m.refused.WithLabelValues("unauthorized").Inc()
			return
		}
		follow := member.Signed && b.engine.members()
		st, joined, err := b.hub.JoinAs(room, member, follow)
		if err != nil {
			if reason := writeJoinError(w, err); reason != "" {
				m.refused.WithLabelValues(reason).Inc()
			}
			return
		}
		defer st.Leave()
		m.connects.Inc()

		h := w.Header()
		h["Content-Type"] = eventStream
		h["Cache-Control"] = noCache
		h["X-Accel-Buffering"] = no // or nginx buffers the stream
		if r.ProtoMajor == 1 {
			// A stream ends only when its connection does, so over
			// HTTP/1.1 its body is delimited by the close rather than
			// chunked, as the SSE specification suggests and net/http
			// supports: each event is then one write of its own bytes,
			// with no chunk framing to format and send.
			h["Transfer-Encoding"] = identity
		}
		w.WriteHeader(http.StatusOK)

		out := newStreamWriter(w, opts.WriteTimeout)
		first := appendCountEvent(append(make([]byte, 0, len(retry)+128), retry...), joined.Counts.People)
		// joined.Members is nil unless follow (then at least empty).
		first = appendPresenceEvent(first, room, joined.Counts, joined.Members, joined.Truncated)
		err = b.engine.serve(r.Context(), out, r, st, streamStart{first: first, members: follow, memberSeq: joined.Seq})

		reason := reasonClient
		switch {
		case out.evicted():
			reason = reasonEvicted
			log.Debug("stream evicted: write stalled", "room", room, "remote", r.RemoteAddr, "err", err)
		case b.closing.Err() != nil:
			reason = reasonShutdown
		}
		m.disconnect.WithLabelValues(reason).Inc()
	}
}
