package handlers

import (
	"context"
	"net/http"
	"strconv"
	"sync"

	"github.com/presence/presence/presence"
)

// directEngine keeps, per room, the latest count event ready to write and a
// channel that each publish closes and replaces. Every stream's handler
// waits on its room's channel and, woken, writes whatever is newest: a slow
// stream skips stale counts instead of queueing them, and a stalled one
// blocks only itself, until its write deadline. Per stream it costs no
// goroutine or buffer beyond the handler's own.
type directEngine struct {
	metrics *Metrics
	mu      sync.RWMutex
	feeds   map[string]*feed // rooms with streams; entries owned by the hub's room lifecycle
}

// feed is one room's latest event and its wake-up channel.
type feed struct {
	mu   sync.Mutex
	ev   []byte        // latest count event, shared read-only by all streams
	seq  uint64        // its publish sequence
	hb   uint64        // heartbeats so far
	wake chan struct{} // closed when ev or hb changes
}

func newDirectEngine(m *Metrics) *directEngine {
	return &directEngine{metrics: m, feeds: make(map[string]*feed)}
}

// RoomOpened implements presence.Notifier.
func (e *directEngine) RoomOpened(room string) {
	e.mu.Lock()
	e.feeds[room] = &feed{wake: make(chan struct{})}
	e.mu.Unlock()
}

// RoomClosed implements presence.Notifier.
func (e *directEngine) RoomClosed(room string) {
	e.mu.Lock()
	delete(e.feeds, room)
	e.mu.Unlock()
}

func (e *directEngine) feed(room string) *feed {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.feeds[room]
}

// Publish implements presence.Notifier: the event is built once for all.
func (e *directEngine) Publish(room string, count int, seq uint64) {
	f := e.feed(room)
	if f == nil {
		return
	}
	ev := make([]byte, 0, 48)
	ev = append(ev, "id: "...)
	ev = strconv.AppendUint(ev, seq, 10)
	ev = append(ev, "\nevent: user count\ndata: "...)
	ev = strconv.AppendInt(ev, int64(count), 10)
	ev = append(ev, "\n\n"...)
	f.mu.Lock()
	f.ev, f.seq = ev, seq
	close(f.wake)
	f.wake = make(chan struct{})
	f.mu.Unlock()
}

func (e *directEngine) heartbeat(room string) {
	if f := e.feed(room); f != nil {
		f.mu.Lock()
		f.hb++
		close(f.wake)
		f.wake = make(chan struct{})
		f.mu.Unlock()
	}
}

func (e *directEngine) close() {}

var heartbeatLine = []byte(": hb\n\n")

func (e *directEngine) serve(ctx context.Context, out *eventWriter, _ *http.Request, st *presence.Stream, first []byte) error {
	f := e.feed(st.Room()) // exists while st is in the room
	f.mu.Lock()
	seq, hb, wake := f.seq, f.hb, f.wake
	f.mu.Unlock()
	// From here on every publish closes a channel this stream holds.
	st.Subscribed()
	out.write(first)
	if err := out.flush(); err != nil {
		return err
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-wake:
		}
		f.mu.Lock()
		ev, nseq, nhb := f.ev, f.seq, f.hb
		wake = f.wake
		f.mu.Unlock()
		if nseq != seq {
			out.write(ev)
		}
		if nhb != hb {
			out.write(heartbeatLine)
		}
		if err := out.flush(); err != nil {
			return err
		}
		if nseq != seq {
			st.Delivered(nseq)
			e.metrics.deliveries.Inc()
		}
		seq, hb = nseq, nhb
	}
}
