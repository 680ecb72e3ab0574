package handlers

import (
	"context"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"

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
}

// feed is one room's latest state, and its presence.Publisher. Publishes and heartbeats (serialised by
// mu) swap in a new state and then close the old one's channel; streams read
// the state without locking, since thousands wake at once.
type feed struct {
	room    string
	metrics *Metrics
	mu      sync.Mutex
	state   atomic.Pointer[feedState]
}

// feedState is immutable once stored.
type feedState struct {
	ev  []byte // latest count events (user count, presence), shared read-only by all streams
	seq uint64 // its publish sequence
	// For streams that follow members: who joined and left in this publish,
	// and everyone (a presence event with members) for a stream that missed
	// a publish. Nil while no stream of the room follows members.
	delta, all []byte
	hb         uint64        // heartbeats so far
	wake       chan struct{} // closed when a newer state is stored
}

func newFeed(room string, m *Metrics) *feed {
	f := &feed{room: room, metrics: m}
	f.state.Store(&feedState{wake: make(chan struct{})})
	return f
}

// update stores the state that change makes of the current one and wakes
// the streams waiting on the current one.
func (f *feed) update(change func(*feedState)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	old := f.state.Load()
	next := *old
	change(&next)
	next.wake = make(chan struct{})
	f.state.Store(&next)
	close(old.wake)
}

func newDirectEngine(m *Metrics) *directEngine {
	return &directEngine{metrics: m}
}

// RoomOpened implements presence.Notifier.
func (e *directEngine) RoomOpened(room string) presence.Publisher {
	return newFeed(room, e.metrics)
}

// RoomClosed implements presence.Notifier.
func (e *directEngine) RoomClosed(string, presence.Publisher) {}

// Publish implements presence.Publisher: the events are built once for all.
func (f *feed) Publish(u presence.Update) {
	f.metrics.events.Inc()
	ev := make([]byte, 0, 128)
	ev = append(ev, "id: "...)
	ev = strconv.AppendUint(ev, u.Seq, 10)
	ev = appendCountEvent(append(ev, '\n'), u.Counts.People)
	ev = appendPresenceEvent(ev, f.room, u.Counts, nil, false)
	var delta, all []byte
	if u.Tracked {
		delta = appendMemberEvents(appendMemberEvents([]byte{}, "join", u.Joined), "leave", u.Left)
		all = appendPresenceEvent(nil, f.room, u.Counts, u.Members, u.Truncated)
	}
	f.update(func(st *feedState) { st.ev, st.seq, st.delta, st.all = ev, u.Seq, delta, all })
}

func (e *directEngine) heartbeat(p presence.Publisher) {
	p.(*feed).update(func(st *feedState) { st.hb++ })
}

func (e *directEngine) close() {}

var heartbeatLine = []byte(": hb\n\n")

func (e *directEngine) serve(ctx context.Context, out *streamWriter, _ *http.Request, st *presence.Stream, start streamStart) error {
	f := st.Publisher().(*feed)
	cur := f.state.Load()
	// From here on every publish closes a channel this stream holds.
	st.Subscribed()
	if err := sendFirst(out, start.first, e.metrics); err != nil {
		return err
	}
	memberSeq := start.memberSeq // the last publish before the stream's member list
	whole := true                // the next member data must be the whole list
	done := ctx.Done()
	warn, stopWarn := start.expiry.warning() // nil unless signed in
	defer stopWarn()
	for {
		select {
		case <-done:
			return nil
		case <-cur.wake:
		case <-warn:
			warn = nil
			if err := start.expiry.warn(out); err != nil {
				return err
			}
			continue
		}
		next := f.state.Load()
		if next.seq != cur.seq {
			out.write(next.ev)
			if start.members && next.seq > memberSeq && next.all != nil {
				if next.seq == memberSeq+1 && !whole {
					out.write(next.delta)
				} else {
					// The first publish after the stream's own list, or
					// after a missed one: everyone, again.
					out.write(next.all)
				}
				memberSeq, whole = next.seq, false
			}
		}
		if next.hb != cur.hb {
			out.write(heartbeatLine)
		}
		if err := out.flush(); err != nil {
			return err
		}
		if next.seq != cur.seq {
			st.Delivered(next.seq)
			e.metrics.deliveries.Inc()
		}
		cur = next
	}
}

func (e *directEngine) members() bool { return true }
