package handlers

import (
	"bytes"
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
	// Header values shared by every stream (net/http only reads them), so
	// that a stream allocates none of its own.
	eventStream, noCache, no := []string{"text/event-stream"}, []string{"no-cache"}, []string{"no"}
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
		h["Content-Type"] = eventStream
		h["Cache-Control"] = noCache
		h["X-Accel-Buffering"] = no // or nginx buffers the stream
		w.WriteHeader(http.StatusOK)

		// r3labs serves until the request's context ends: when the client
		// goes, on shutdown (through the server's BaseContext), or when a
		// write fails (net/http cancels a connection's context on a failed
		// write, a missed write deadline included).
		sw := &streamWriter{w: w, rc: http.NewResponseController(w), timeout: opts.WriteTimeout, stream: st, metrics: m}
		// The first count goes straight to the socket (r3labs cannot send to
		// one subscriber); it does not time a fan-out, so it skips Delivered.
		_, _ = w.Write(retry)
		_, _ = fmt.Fprintf(w, "event: user count\ndata: %d\n\n", count)
		sw.Flush()
		if sw.err == nil {
			m.deliveries.Inc()
			b.srv.ServeHTTP(sw, subscribeRequest(r, room))
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
// room (room names need no escaping), and Last-Event-ID is dropped, since
// r3labs refuses a non-numeric one and a reconnecting client only needs the
// current count, which it got.
func subscribeRequest(r *http.Request, room string) *http.Request {
	r2 := new(http.Request)
	*r2 = *r
	r2.URL = &url.URL{Path: r.URL.Path, RawQuery: "stream=" + room}
	if _, ok := r.Header["Last-Event-Id"]; ok {
		r2.Header = r.Header.Clone()
		r2.Header.Del("Last-Event-ID")
	}
	return r2
}

// streamWriter wraps a stream's ResponseWriter for r3labs: headers are
// already sent, every flush has a write deadline, and after the first failed
// write nothing more is tried (r3labs ignores write errors; the request's
// context, cancelled by net/http on that failure, ends its loop).
type streamWriter struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration
	stream  *presence.Stream
	err     error  // first write error; the stream is over once set
	event   bool   // a count event (not only a comment) is buffered
	seq     uint64 // its publish sequence
	metrics *Metrics
}

// Header returns a throwaway map: the headers went out with the first
// event, and r3labs still sets its own, which would only grow the live one.
func (s *streamWriter) Header() http.Header { return http.Header{} }

// WriteHeader is called by r3labs right after it registered the subscriber
// with the room's stream (the status itself went out with the first event):
// from now on the stream gets every publish.
func (s *streamWriter) WriteHeader(int) { s.stream.Subscribed() }

var idField = []byte("id: ")

func (s *streamWriter) Write(p []byte) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	// r3labs writes a count event's "id: <seq>" line in one call.
	if rest, ok := bytes.CutPrefix(p, idField); ok {
		if seq, err := strconv.ParseUint(string(bytes.TrimSuffix(rest, []byte("\n"))), 10, 64); err == nil {
			s.seq, s.event = seq, true
		}
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
		s.stream.Delivered(s.seq)
		s.metrics.deliveries.Inc()
	}
}

func (s *streamWriter) fail(err error) { s.err = err }
