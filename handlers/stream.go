package handlers

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/presence/presence/presence"
)

// StreamOptions are the per-stream settings of the SSE endpoints.
type StreamOptions struct {
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
	return func(w http.ResponseWriter, r *http.Request) {
		room := presence.DefaultRoom
		if rctx := chi.RouteContext(r.Context()); rctx != nil && rctx.RoutePattern() != "/events" {
			room = chi.URLParam(r, "room")
		}
		st, count, err := b.hub.Join(room)
		if err != nil {
			if reason := writeJoinError(w, err); reason != "" {
				m.refused.WithLabelValues(reason).Inc()
			}
			return
		}
		defer st.Leave()
		m.connects.Inc()

		h := w.Header()
		h.Set("Content-Type", "text/event-stream")
		h.Set("Cache-Control", "no-cache")
		h.Set("X-Accel-Buffering", "no") // or nginx buffers the stream
		w.WriteHeader(http.StatusOK)

		// The request's context ends with the client or, through the
		// server's BaseContext, on shutdown; cancel also ends it when a
		// write fails.
		ctx, cancel := context.WithCancel(r.Context())
		defer cancel()

		sw := &streamWriter{w: w, rc: http.NewResponseController(w), timeout: opts.WriteTimeout, cancel: cancel, stream: st, metrics: m}
		// The first count goes straight to the socket (r3labs cannot send to
		// one subscriber); it does not time a fan-out, so it skips Delivered.
		_, _ = w.Write(retry)
		_, _ = fmt.Fprintf(w, "event: user count\ndata: %d\n\n", count)
		sw.Flush()
		if sw.err == nil {
			m.deliveries.Inc()
			b.srv.ServeHTTP(sw, subscribeRequest(ctx, r, room, count))
		}

		reason := reasonClient
		switch {
		case errors.Is(sw.err, os.ErrDeadlineExceeded):
			reason = reasonEvicted
			log.Debug("stream evicted: write stalled", "room", room, "remote", r.RemoteAddr)
		case b.closing.Err() != nil:
			reason = reasonShutdown
		}
		m.disconnect.WithLabelValues(reason).Inc()
	}
}

// subscribeRequest is the request handed to r3labs: the stream id is the
// room, the count already sent rides along for OnSubscribe, and
// Last-Event-ID is dropped, since r3labs refuses a non-numeric one and a
// reconnecting client only needs the current count, which it got.
func subscribeRequest(ctx context.Context, r *http.Request, room string, seen int) *http.Request {
	r2 := r.WithContext(ctx)
	r2.URL = &url.URL{Path: r.URL.Path, RawQuery: url.Values{"stream": {room}, seenParam: {strconv.Itoa(seen)}}.Encode()}
	if _, ok := r.Header["Last-Event-Id"]; ok {
		r2.Header = r.Header.Clone()
		r2.Header.Del("Last-Event-ID")
	}
	return r2
}

// streamWriter wraps a stream's ResponseWriter for r3labs: headers are
// already sent, every flush has a write deadline, and the first failed write
// ends the stream (r3labs ignores write errors and would keep a dead client).
type streamWriter struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration
	cancel  context.CancelFunc
	stream  *presence.Stream
	err     error // first write error; the stream is over once set
	event   bool  // an event (not only a comment) is buffered
	metrics *Metrics
}

// Header returns a throwaway map: the headers went out with the first
// event, and r3labs still sets its own, which would only grow the live one.
func (s *streamWriter) Header() http.Header { return http.Header{} }

// WriteHeader does nothing: the status went out with the first event.
func (s *streamWriter) WriteHeader(int) {}

var eventField = []byte("event: ")

func (s *streamWriter) Write(p []byte) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	if bytes.HasPrefix(p, eventField) {
		s.event = true
	}
	n, err := s.w.Write(p)
	if err != nil {
		s.fail(err)
	}
	return n, err
}

// Flush sends what is buffered, or gives up after the write deadline.
func (s *streamWriter) Flush() {
	if s.err != nil {
		return
	}
	if err := s.rc.SetWriteDeadline(time.Now().Add(s.timeout)); err != nil {
		s.fail(err)
		return
	}
	if err := s.rc.Flush(); err != nil {
		s.fail(err)
		return
	}
	if s.event {
		s.event = false
		s.stream.Delivered()
		s.metrics.deliveries.Inc()
	}
}

func (s *streamWriter) fail(err error) {
	s.err = err
	s.cancel()
}
