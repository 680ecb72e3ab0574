package presence

import (
	"slices"
	"time"
)

// How a room coalesces. A change in a quiet room is published at once;
// after a publish the room waits at least the base window. If changes are
// still coming when the window ends (a ramp, a mass disconnect), it waits
// until they, and the last fan-out, pause for 1/settleFraction of the
// window, but no longer than the busy window: windowFactor times the last
// fan-out's duration, between one and maxWindowFactor base windows. A fixed
// window makes a ramp of N joins cost O(N^2) deliveries, none of which
// anyone needs but the last; this way a busy room publishes rarely, and the
// moment it calms down.
const (
	settleFraction  = 2 // settle = window / settleFraction
	windowFactor    = 8
	maxWindowFactor = 10
)

// pace is what the coalescing rule knows of a room's timing.
type pace struct {
	window       time.Duration // the base window
	lastPub      time.Time     // when the last publish started
	lastChange   time.Time     // when the counts last changed
	changes      int           // changes since the last publish
	lastDelivery time.Time     // when the latest fan-out last reached a stream
	fanout       time.Duration // how long the last fan-outs took (fanoutClock.took)
}

// first is how long after now a change may be looked at: a window after
// the last publish, at once if that has passed.
func (p pace) first(now time.Time) time.Duration {
	return max(0, p.lastPub.Add(p.window).Sub(now))
}

// wait is how long after now a pending change should still wait, once
// first has passed; 0: publish now.
func (p pace) wait(now time.Time) time.Duration {
	// A single change after the last fan-out has finished is not a storm:
	// it goes out now. (During a fan-out, changes are held up by it, so one
	// change then may be the first of many, as when half a room drops.)
	// Deliveries come microseconds apart while a fan-out runs: a tenth of a
	// window without one means it has finished.
	fanoutDone := p.lastDelivery.Add(p.window / 10)
	if p.changes <= 1 && !now.Before(fanoutDone) {
		return 0
	}
	// Settled: no change, and no delivery of the last fan-out, for a while.
	// While a fan-out runs, joins and leaves are held up by it, so a pause
	// in changes then is no sign that the room has calmed down.
	lastActivity := p.lastChange
	if p.lastDelivery.After(lastActivity) {
		lastActivity = p.lastDelivery
	}
	settled := lastActivity.Add(p.window / settleFraction)
	latest := p.lastPub.Add(p.busyWindow())
	if !now.Before(settled) || !now.Before(latest) {
		return 0
	}
	return min(settled.Sub(now), latest.Sub(now))
}

// busyWindow is the longest a busy room waits between publishes: a multiple
// of how long the last fan-out took, at least the base window and at most
// maxWindowFactor of them.
func (p pace) busyWindow() time.Duration {
	return min(max(p.window, windowFactor*p.fanout), maxWindowFactor*p.window)
}

// paceLocked is r's timing now.
func (h *Hub) paceLocked(r *room) pace {
	return pace{
		window:       h.window,
		lastPub:      r.lastPub,
		lastChange:   r.lastChange,
		changes:      r.changes,
		lastDelivery: r.clock.last(),
		fanout:       r.clock.took(r.seq),
	}
}

// scheduleLocked arranges one publish of r, no sooner than a window after
// the last one. A publish already pending will carry the newest count.
func (h *Hub) scheduleLocked(r *room) {
	if r.timer == nil {
		r.timer = time.AfterFunc(h.paceLocked(r).first(time.Now()), func() { h.flush(r) })
	}
}

// flush publishes r's newest count if it changed or a refresh asked for it,
// unless the count is still moving and the busy window allows a wait (see
// pace.wait).
func (h *Hub) flush(r *room) {
	r.pubMu.Lock()
	defer r.pubMu.Unlock()

	h.mu.Lock()
	r.timer = nil
	unchanged := !r.stale() && !r.force
	if h.rooms[r.name] != r || (unchanged && r.watchers == 0) {
		h.mu.Unlock()
		return
	}
	now := time.Now()
	if wait := h.paceLocked(r).wait(now); wait > 0 {
		r.timer = time.AfterFunc(wait, func() { h.flush(r) })
		h.mu.Unlock()
		return
	}
	u := &Update{Counts: r.counts}
	var signed map[string]string // the members, if tracked
	if r.watchers > 0 {
		signed = h.backend.Signed(r.name)
		u.Joined, u.Left = diffMembers(r.members, signed)
		if len(u.Joined)+len(u.Left) == 0 && unchanged {
			h.mu.Unlock()
			return // nothing anyone would see
		}
		r.members = signed
		u.Tracked = true
	}
	r.published, r.force, r.changes = r.counts, false, 0
	r.lastPub = now
	r.seq++
	u.Seq = r.seq
	h.mu.Unlock()

	// Built outside the lock, once for every stream of the room; signed is
	// never written to once stored.
	if u.Tracked {
		u.Members, u.Truncated = sortedMembers(signed, h.capMem)
	}
	u.Events = newEvents(r.name, u)
	r.clock.started(u.Seq, now)
	u.Heartbeats = r.latest.Load().Heartbeats
	r.store(u)
	r.notify()
	h.published.Add(1)
	if h.observe != nil {
		h.observe(r.name, u)
	}
}

// store makes u r's latest Update and closes the one before's Replaced
// channel: every stream waiting on it wakes and reads u. Callers hold
// r.pubMu, so that stores keep their order.
func (r *room) store(u *Update) {
	u.replaced = make(chan struct{})
	close(r.latest.Swap(u).replaced)
}

// Heartbeat replaces the latest Update of every room with one that differs
// only by its Heartbeats, so that every stream wakes and sends its
// keep-alive, and wakes every Watch that is a stream of its own (a
// heartbeat is no news for the watchers of a room). The transport calls it on its own clock.
func (h *Hub) Heartbeat() {
	h.mu.Lock()
	rooms := make([]*room, 0, len(h.rooms))
	for _, r := range h.rooms {
		rooms = append(rooms, r)
	}
	alone := make([]*Watch, 0, len(h.alone))
	for w := range h.alone {
		alone = append(alone, w)
	}
	h.mu.Unlock()
	for _, w := range alone { // woken outside the lock: a watcher's Woken may do some work
		w.hb.Add(1)
		w.poke()
	}
	for _, r := range rooms {
		r.pubMu.Lock()
		next := *r.latest.Load()
		next.Heartbeats++
		r.store(&next)
		r.pubMu.Unlock()
	}
}

// diffMembers returns who is in now and not in was, and the other way
// round, each sorted by ID.
func diffMembers(was, now map[string]string) (joined, left []MemberInfo) {
	for id, name := range now {
		if _, ok := was[id]; !ok {
			joined = append(joined, MemberInfo{ID: id, Name: name})
		}
	}
	for id, name := range was {
		if _, ok := now[id]; !ok {
			left = append(left, MemberInfo{ID: id, Name: name})
		}
	}
	slices.SortFunc(joined, byID)
	slices.SortFunc(left, byID)
	return joined, left
}
