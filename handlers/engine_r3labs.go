package handlers

import (
	"bytes"
	"context"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/r3labs/sse/v2"

	"github.com/presence/presence/presence"
)

// streamBuffer is the r3labs per-room event queue. Publishes come at most
// once per window plus heartbeats, so a short queue is plenty, and a room
// costs little memory even with thousands of rooms.
const streamBuffer = 16

// subscriberQueue is the fixed size of r3labs's per-subscriber channel: its
// fan-out blocks on a subscriber whose channel is full. The write deadline is
// validated against it (see MaxWriteTimeout).
const subscriberQueue = 64

// MaxWriteTimeout is, for the r3labs engine, the longest write deadline that
// keeps a stalled client from ever blocking r3labs's fan-out for its room:
// within it, a room sends fewer events than the subscriber channel holds,
// with a margin.
func MaxWriteTimeout(window, heartbeat time.Duration) time.Duration {
	perSecond := float64(time.Second)/float64(window) + float64(time.Second)/float64(heartbeat)
	return time.Duration(float64(subscriberQueue*3/4) / perSecond * float64(time.Second))
}

// r3labsEngine serves streams with an r3labs/sse server, one r3labs stream
// per room. r3labs's fan-out blocks on a full subscriber channel, replays
// history and leaks goroutines when a stream with subscribers is removed
// (see shared/docs/r3labs-sse-v2.md). So: replay off, streams made and
// removed by the hub's room lifecycle (removed only after the last
// subscriber left), at most one publish per window, a write deadline short
// enough that a stalled subscriber's channel never fills, and streams ended
// through their request context.
type r3labsEngine struct {
	srv     *sse.Server
	metrics *Metrics
}

func newR3labsEngine(m *Metrics) *r3labsEngine {
	srv := sse.New()
	srv.AutoReplay = false // history would grow without bound and replay to newcomers
	srv.AutoStream = false // streams are made and removed by the hub's room lifecycle
	srv.BufferSize = streamBuffer
	return &r3labsEngine{srv: srv, metrics: m}
}

// RoomOpened implements presence.Notifier.
func (e *r3labsEngine) RoomOpened(room string) presence.Publisher {
	e.srv.CreateStream(room)
	return &r3labsRoom{engine: e, name: room}
}

// RoomClosed implements presence.Notifier. The hub calls it only after the
// room's last stream handler has returned, so no subscriber is left on the
// r3labs stream (removing one with subscribers would leak them).
func (e *r3labsEngine) RoomClosed(room string, p presence.Publisher) {
	r := p.(*r3labsRoom)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	e.srv.RemoveStream(room)
}

// r3labsRoom is one room's presence.Publisher. r3labs finds streams by
// name: closed keeps a late publish of a closed room from reaching a new
// room of the same name.
type r3labsRoom struct {
	engine *r3labsEngine
	name   string
	mu     sync.Mutex
	closed bool
}

// Publish implements presence.Publisher. Every publish is a fresh Event:
// r3labs may rewrite an event it is given. Its id is the room's publish
// sequence, which the stream writers report back to time the fan-out.
func (r *r3labsRoom) Publish(u presence.Update) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	r.engine.metrics.events.Inc()
	r.engine.srv.Publish(r.name, &sse.Event{
		ID:    []byte(strconv.FormatUint(u.Seq, 10)),
		Event: []byte("user count"),
		Data:  []byte(strconv.Itoa(u.Counts.People)),
	})
	r.engine.srv.Publish(r.name, &sse.Event{Event: []byte("presence"), Data: appendPresenceData(nil, r.name, u.Counts, nil, false)})
}

// heartbeat drops the comment if the room's queue is full (its fan-out is
// busy, so its streams are not idle), rather than hold up other rooms.
func (e *r3labsEngine) heartbeat(p presence.Publisher) {
	e.srv.TryPublish(p.(*r3labsRoom).name, &sse.Event{Comment: []byte("hb")})
}

func (e *r3labsEngine) close() { e.srv.Close() }

// serve writes the first count itself (r3labs cannot send to one
// subscriber), then hands the stream to r3labs, which serves until the
// request's context ends: when the client goes, on shutdown (through the
// server's BaseContext), when a write fails (net/http cancels a
// connection's context on a failed write, a missed deadline included), or
// when a signed-in stream's token ends it (its deadline; the warning before
// is written between r3labs's events, see expiry.wrap).
func (e *r3labsEngine) serve(_ context.Context, out *streamWriter, r *http.Request, st *presence.Stream, start streamStart) error {
	if err := sendFirst(out, start.first, e.metrics); err != nil {
		return err
	}
	w, stopWarn := start.expiry.wrap(&r3labsWriter{out: out, stream: st, metrics: e.metrics}, out)
	e.srv.ServeHTTP(w, subscribeRequest(r, st.Room()))
	stopWarn()
	return out.err
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

// r3labsWriter is the ResponseWriter r3labs writes to, a thin layer over
// the stream's streamWriter, which owns the write deadline: headers are
// already sent, and after the first failed write nothing more is tried
// (r3labs ignores write errors). r3labs writes an event in several calls
// and then flushes: the first call arms the deadline, the flush clears it.
type r3labsWriter struct {
	out     *streamWriter
	stream  *presence.Stream
	metrics *Metrics
	event   bool   // a count event (not only a comment) is buffered
	seq     uint64 // its publish sequence
}

// Header returns a throwaway map: the headers went out with the first
// event, and r3labs still sets its own, which would only grow the live one.
func (s *r3labsWriter) Header() http.Header { return http.Header{} }

// WriteHeader is called by r3labs right after it registered the subscriber
// with the room's stream (the status itself went out with the first event):
// from now on the stream gets every publish.
func (s *r3labsWriter) WriteHeader(int) { s.stream.Subscribed() }

var idField = []byte("id: ")

func (s *r3labsWriter) Write(p []byte) (int, error) {
	// r3labs writes a count event's "id: <seq>" line in one call.
	if rest, ok := bytes.CutPrefix(p, idField); ok {
		if seq, err := strconv.ParseUint(string(bytes.TrimSuffix(rest, []byte("\n"))), 10, 64); err == nil {
			s.seq, s.event = seq, true
		}
	}
	s.out.write(p)
	if s.out.err != nil {
		return 0, s.out.err
	}
	return len(p), nil
}

// Flush implements http.Flusher, which r3labs requires.
func (s *r3labsWriter) Flush() {
	if s.out.flush() == nil && s.event {
		s.stream.Delivered(s.seq)
		s.metrics.deliveries.Inc()
	}
	s.event = false
}

// members is false: an r3labs stream carries the same events to every
// subscriber of a room, so member events, which only signed-in streams get,
// are not sent (see the README).
func (e *r3labsEngine) members() bool { return false }
