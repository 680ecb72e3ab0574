package presence

import (
	"bytes"
	"fmt"
	"sync"
	"sync/atomic"
)

// Watch is one stream's following of rooms it is not counted in: their
// counts, and their members where it may see them. It costs no goroutine,
// timer or buffer per room: each followed room, when it stores a publish,
// marks the room dirty in the Watch and wakes it (a non-blocking send on a
// channel of one), and the stream's own goroutine drains the dirty rooms
// (Drain) and writes the newest Update of each. As with a room's own
// streams, nothing in the hub waits for a watcher, and a slow watcher skips
// stale counts.
type Watch struct {
	hub    *Hub
	rooms  []followed
	wake   chan struct{} // cap 1: a pending wake-up
	alone  bool          // a stream of its own, counted as one (WatchOptions.Alone)
	source string        // counted against, if alone and sources are bounded
	once   sync.Once
	hb     atomic.Uint64 // heartbeats, if alone
	user   string        // WatchOptions.User
	endh   endHandle     // under Hub.mu

	mu           sync.Mutex // guards dirty and followed.queued
	dirty, spare []int32    // rooms marked since the last Drain; spare is the other buffer
}

// followed is one room a Watch follows. queued is under Watch.mu; the rest
// is the watcher's own (Drain).
type followed struct {
	r              *room
	sent           []byte // the presence data last handed out
	seq, memberSeq uint64 // last Update handled; last publish before the member list
	members        bool   // follows the room's members
	whole          bool   // the next member data must be the whole list
	queued         bool
}

// WatchOptions are the optional parts of a watch.
type WatchOptions struct {
	// Members reports whether the watcher may follow room's members; nil:
	// none.
	Members func(room string) bool
	// Alone: the watch is a stream of its own, in no room. It counts as an
	// open stream (HubOptions.MaxStreams, MaxPerSource with Source), and
	// gets the hub's heartbeats (Heartbeats).
	Alone bool
	// Source says where the watch comes from, as JoinOptions.Source: the
	// rooms its watch brings into existence count against it
	// (HubOptions.MaxWatchRoomsPerSource), and with Alone, the watch
	// itself (MaxPerSource).
	Source string
	// User is the watcher's member ID if signed in: a Disconnect of the
	// user ends the watch, and a blocked user's watch is refused
	// (ErrBlocked). "": anonymous, or a watch that is part of a stream
	// which answers for it.
	User string
	// End, if set, ends the watch, as JoinOptions.End does a stream.
	End func()
}

// WatchEvent is what a watcher is told of one room: Presence is the
// presence data, counts only or, on the first publish that tracks members
// or after a missed one, with the whole member list; Joined and Left are
// the members who arrived and left since the publish before.
type WatchEvent struct {
	Presence     []byte
	Joined, Left [][]byte
}

// Watch follows rooms, each named once, and returns the Watch with the
// presence data of each room now, in order (with the member list where
// o.Members allows). A room nobody on this node is in is held as a small
// entry so that its changes, from other nodes too, are published to its
// watchers; such rooms are bounded apart from the rooms of streams
// (HubOptions.MaxRooms each), so that watching never keeps people out, and
// per source (HubOptions.MaxWatchRoomsPerSource), so that one source's
// made-up names never keep others from watching.
func (h *Hub) Watch(rooms []string, o WatchOptions) (*Watch, [][]byte, error) {
	seen := make(map[string]bool, len(rooms))
	for _, name := range rooms {
		if err := ValidateRoom(name); err != nil {
			return nil, nil, fmt.Errorf("room %q: %w", name, err)
		}
		if seen[name] {
			return nil, nil, fmt.Errorf("%w: room %q named twice", ErrInvalidRoom, name)
		}
		seen[name] = true
	}
	src := o.Source
	if h.maxSource == 0 || !o.Alone {
		src = ""
	}
	from := o.Source // charged for the rooms it makes
	if h.maxWatchFrom == 0 {
		from = ""
	}
	w := &Watch{hub: h, rooms: make([]followed, len(rooms)), wake: make(chan struct{}, 1), alone: o.Alone, source: src, user: o.User, endh: endHandle{end: o.End}}
	counts := make([]Counts, len(rooms))
	signed := make([]map[string]string, len(rooms))

	h.mu.Lock()
	if err := h.admitWatchLocked(w, rooms, from); err != nil {
		h.mu.Unlock()
		return nil, nil, err
	}
	for i, name := range rooms {
		r := h.rooms[name]
		if r == nil {
			r = newRoom(name)
			r.counts = h.backend.Count(name)
			h.rooms[name] = r
			r.madeBy = from
			addCount(h.watchFrom, from, 1)
		}
		r.follows++
		h.watchOnlyLocked(r)
		f := &w.rooms[i]
		f.r, f.seq, counts[i] = r, r.latest.Load().Seq, r.counts
		if o.Members != nil && o.Members(name) {
			signed[i] = h.backend.Signed(name)
			if r.watchers == 0 {
				r.members = signed[i]
				r.force = true
			}
			r.watchers++
			f.members, f.whole, f.memberSeq = true, true, r.seq
		}
		if r.stale() || r.force {
			h.scheduleLocked(r)
		}
	}
	h.mu.Unlock()

	first := make([][]byte, len(rooms))
	for i := range w.rooms {
		f := &w.rooms[i]
		// The room's latest publish says the same when its counts have not
		// moved since: its data is shared rather than built per watcher.
		if u := f.r.latest.Load(); u.Seq > 0 && u.Seq == f.seq && u.Counts == counts[i] {
			f.sent = u.Events.Presence
		} else {
			f.sent = presenceJSON(rooms[i], counts[i], false, nil, false)
		}
		first[i] = f.sent
		if f.members {
			// signed is never written to once stored: sorting needs no lock.
			ms, truncated := sortedMembers(signed[i], h.capMem)
			first[i] = presenceJSON(rooms[i], counts[i], true, ms, truncated)
		}
		r := f.r
		r.pubMu.Lock()
		if r.followers == nil {
			r.followers = make(map[*Watch]int32)
		}
		r.followers[w] = int32(i)
		if r.latest.Load().Seq != f.seq {
			w.mark(int32(i)) // a publish stored before this watcher was listed
		}
		r.pubMu.Unlock()
	}
	return w, first, nil
}

// admitWatchLocked checks that w may open: the hub is open, an alone watch
// fits the stream bounds, and the rooms it would add fit the share of its
// source from and the bound of watched rooms; if so it counts an alone
// watch as a stream.
func (h *Hub) admitWatchLocked(w *Watch, rooms []string, from string) error {
	if h.closed {
		return ErrClosed
	}
	if w.user != "" && h.blockedLocked(w.user) {
		return ErrBlocked
	}
	if w.alone {
		if w.source != "" && h.sources[w.source] >= h.maxSource {
			return ErrSourceLimit
		}
		if h.streams >= h.maxStr {
			return ErrStreamLimit
		}
	}
	added := 0
	for _, name := range rooms {
		if h.rooms[name] == nil {
			added++
		}
	}
	if from != "" && added > 0 && h.watchFrom[from]+added > h.maxWatchFrom {
		return fmt.Errorf("%w: %d rooms nobody is in watched already, %d more asked, at most %d", ErrWatchSourceLimit, h.watchFrom[from], added, h.maxWatchFrom)
	}
	if h.watchOnly+added > h.maxRooms {
		return fmt.Errorf("%w: as many rooms are watched with no one here as this server may hold", ErrRoomLimit)
	}
	if w.alone {
		h.streams++
		h.peak = max(h.peak, h.streams)
		h.addSourceLocked(w.source, 1)
		h.alone[w] = struct{}{}
	}
	h.trackLocked(&w.endh, w.user, nil)
	return nil
}

// Wake returns the channel on which the watcher is woken when a followed
// room has news, or, for an alone watch, a heartbeat: then call Drain.
func (w *Watch) Wake() <-chan struct{} { return w.wake }

// Heartbeats returns how many heartbeats reached an alone watch: a watcher
// that sees it change sends its keep-alive.
func (w *Watch) Heartbeats() uint64 { return w.hb.Load() }

// mark queues room i for the next Drain and wakes the watcher. It never
// blocks: a wake-up already pending covers this one.
func (w *Watch) mark(i int32) {
	w.mu.Lock()
	if f := &w.rooms[i]; !f.queued {
		f.queued = true
		w.dirty = append(w.dirty, i) // at most one entry per room
	}
	w.mu.Unlock()
	w.poke()
}

// poke wakes the watcher unless a wake-up is pending.
func (w *Watch) poke() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// Drain calls emit with what each room marked since the last Drain has
// for the watcher: the newest Update of the room, unless it says what the
// watcher was last told. Call it from the watcher's goroutine only.
func (w *Watch) Drain(emit func(WatchEvent)) {
	w.mu.Lock()
	dirty := w.dirty
	w.dirty, w.spare = w.spare[:0], dirty
	for _, i := range dirty {
		w.rooms[i].queued = false
	}
	w.mu.Unlock()
	for _, i := range dirty {
		f := &w.rooms[i]
		u := f.r.latest.Load()
		if u.Seq == f.seq {
			continue
		}
		members := f.members && u.Seq > f.memberSeq && u.Tracked
		if members || !bytes.Equal(u.Events.Presence, f.sent) {
			ev := WatchEvent{Presence: u.Events.Presence}
			switch {
			case members && u.Seq == f.memberSeq+1 && !f.whole:
				ev.Joined, ev.Left = u.Events.Joined, u.Events.Left
			case members:
				ev.Presence = u.Events.Members
			}
			emit(ev)
			f.sent = u.Events.Presence
		}
		if members {
			f.memberSeq, f.whole = u.Seq, false
		}
		f.seq = u.Seq
	}
}

// Close ends the watch: its rooms stop telling it, and a room that only
// watchers held is forgotten once its last watcher goes. Calling it again
// does nothing.
func (w *Watch) Close() { w.once.Do(w.close) }

func (w *Watch) close() {
	for i := range w.rooms {
		r := w.rooms[i].r
		r.pubMu.Lock()
		delete(r.followers, w)
		r.pubMu.Unlock()
	}
	h := w.hub
	h.mu.Lock()
	defer h.mu.Unlock()
	h.untrackLocked(&w.endh, w.user, nil)
	for i := range w.rooms {
		f := &w.rooms[i]
		r := f.r
		if r.follows--; r.follows == 0 {
			h.unchargeLocked(r)
		}
		if f.members {
			if r.watchers--; r.watchers == 0 {
				r.members = nil
			}
		}
		if r.empty() && h.rooms[r.name] == r {
			h.dropLocked(r)
		} else {
			h.watchOnlyLocked(r)
		}
	}
	if w.alone {
		delete(h.alone, w)
		h.addSourceLocked(w.source, -1)
		h.streams--
		if h.closed && h.streams == 0 {
			close(h.drained)
		}
	}
}

// notify marks r dirty in each of its watchers. Callers hold r.pubMu.
func (r *room) notify() {
	for w, i := range r.followers {
		w.mark(i)
	}
}

// empty reports whether nothing holds r: no stream of this node, none in
// its grace, no watcher.
func (r *room) empty() bool { return r.local == 0 && len(r.ghosts) == 0 && r.follows == 0 }

// unchargeLocked releases the room that r's maker's watch brought into
// existence from its source's share: the room's last watcher went, or r is
// dropped.
func (h *Hub) unchargeLocked(r *room) {
	addCount(h.watchFrom, r.madeBy, -1)
	r.madeBy = ""
}

// watchOnlyLocked keeps r counted in h.watchOnly exactly while only
// watchers hold it.
func (h *Hub) watchOnlyLocked(r *room) {
	wo := r.local == 0 && len(r.ghosts) == 0 && r.follows > 0 && h.rooms[r.name] == r
	switch {
	case wo && !r.watchOnly:
		h.watchOnly++
	case !wo && r.watchOnly:
		h.watchOnly--
	}
	r.watchOnly = wo
}
