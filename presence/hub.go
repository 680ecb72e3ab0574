package presence

import (
	"container/list"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Hub tracks the streams of this node by room, and keeps each room's
// latest Update for its streams, coalesced. One Hub serves the whole
// process.
type Hub struct {
	backend      Backend
	window       time.Duration
	maxStr       int
	maxRooms     int
	grace        time.Duration
	capMem       int
	maxSource    int
	maxGraceFrom int
	maxWatchFrom int
	observer     Observer // HubOptions.Observer, never nil

	mu      sync.Mutex
	rooms   map[string]*room
	streams int
	peak    int // most streams at once since the last PeakStreams
	ghosts  int // closed streams in their grace, at most maxStr
	// Rooms with no open stream of this node, only closed ones in their
	// grace, oldest first: a new room may take the place of the first.
	idle *list.List
	// Streams plus ghosts by source, while maxSource > 0; no zero entries,
	// so at most streams+ghosts keys.
	sources map[string]int
	// Closed streams in their grace by source, while maxGraceFrom > 0; no
	// zero entries.
	graceFrom map[string]int
	closed    bool
	drained   chan struct{} // closed once closed and no stream is left
	// Rooms only watchers hold (watch.go), at most maxRooms of them made
	// by watches: they never count toward maxRooms for people.
	watchOnly int
	// Rooms charged to the source whose watch made them (room.madeBy),
	// while maxWatchFrom > 0; no zero entries.
	watchFrom map[string]int
	// Watches that are streams of their own, for the heartbeats; at most
	// streams of them.
	alone map[*Watch]struct{}
	// The streams and watches of each signed-in user that the hub can end
	// (disconnect.go), by member ID: list heads, no empty entries.
	users map[string]*endHandle
	// Users whose new streams are refused, until when; at most MaxBlocked.
	blocked map[string]time.Time
	// Closed streams in their grace by signed-in member ID, so that a
	// user's disconnect looks for them only if there are some; no zero
	// entries.
	graceOf map[string]int

	published atomic.Uint64 // publishes so far, for Published
	// observe, if set, is told every publish, after it was stored; for
	// tests. Set before the first join.
	observe func(room string, u *Update)
}

// room is the hub's state of one room on this node. The fields up to
// pubMu are under Hub.mu; the rest are for the streams, which read them
// without the hub's lock.
type room struct {
	name     string
	local    int                 // streams of this node in the room
	watchers int                 // streams that follow the members
	ghosts   map[string][]*ghost // closed streams in their grace, by member ID (grace.go)
	idle     *list.Element       // in Hub.idle while local == 0 and ghosts remain
	follows  int                 // Watches that follow the room (watch.go)
	// Counted in Hub.watchOnly: only watchers hold the room.
	watchOnly bool
	// The source charged for the room: its watch made it (watch.go); ""
	// if none. Released with the room's last watcher.
	madeBy string

	// What was published, and what changed since (coalesce.go).
	counts     Counts            // latest counts from the backend
	published  Counts            // the counts of publish seq (valid once seq > 0)
	members    map[string]string // signed-in members as last published; while watchers > 0
	seq        uint64            // of the last publish
	force      bool              // publish even if the counts did not change
	timer      *time.Timer       // pending publish, nil if none
	lastPub    time.Time         // when the last publish started
	lastChange time.Time         // when the count last changed
	changes    int               // changes since the last publish

	pubMu  sync.Mutex             // serialises publishes and heartbeats: stores of latest
	latest atomic.Pointer[Update] // never nil; replaced by store
	// The Watches that follow the room, with the room's index in each;
	// under pubMu. A publish marks the room dirty in each (notify).
	followers map[*Watch]int32
	clock     fanoutClock // fed by the streams' deliveries (fanout.go)

	ends *endHandle // the room's own streams the hub can end (disconnect.go); under Hub.mu
}

// newRoom is an empty room whose latest Update is the zero one.
func newRoom(name string) *room {
	r := &room{name: name}
	r.latest.Store(&Update{replaced: make(chan struct{})})
	return r
}

// NewHub returns a Hub over backend, or the *option.Errors of the
// options it refuses, joined.
func NewHub(backend Backend, opts HubOptions) (*Hub, error) {
	if backend == nil {
		return nil, fmt.Errorf("presence: a backend is required")
	}
	if err := opts.validate(); err != nil {
		return nil, err
	}
	if opts.Observer == nil {
		opts.Observer = noObserver{}
	}
	return &Hub{
		backend:      backend,
		window:       opts.Window,
		maxStr:       opts.MaxStreams,
		maxRooms:     opts.MaxRooms,
		grace:        opts.Grace,
		capMem:       opts.MembersCap,
		maxSource:    opts.MaxPerSource,
		maxGraceFrom: opts.MaxGracePerSource,
		maxWatchFrom: opts.MaxWatchRoomsPerSource,
		observer:     opts.Observer,
		watchFrom:    make(map[string]int),
		graceFrom:    make(map[string]int),
		graceOf:      make(map[string]int),
		rooms:        make(map[string]*room),
		idle:         list.New(),
		sources:      make(map[string]int),
		alone:        make(map[*Watch]struct{}),
	}, nil
}

// Stream is one client's place in a room, from Join to Leave.
type Stream struct {
	hub     *Hub
	room    *room
	member  Member
	watches bool   // follows the members
	source  string // JoinOptions.Source, if sources are bounded
	from    string // JoinOptions.Source, always
	since   time.Time
	once    sync.Once
	endh    endHandle // under Hub.mu
}

// Latest returns the newest Update of the stream's room; wait on its
// Replaced channel for the next.
func (s *Stream) Latest() *Update { return s.room.latest.Load() }

// setCounts records a change of r's counts.
func (r *room) setCounts(c Counts) {
	r.counts = c
	r.lastChange = time.Now()
	r.changes++
}

// stale reports whether r's counts differ from the last publish, or there
// was none.
func (r *room) stale() bool { return r.seq == 0 || r.counts != r.published }

// Leave takes the stream out of its room. Calling it again does nothing.
func (s *Stream) Leave() {
	s.once.Do(func() { s.hub.leave(s) })
}

// leftLocked takes m out of r in the backend and publishes the change, or
// drops r if no one of this node is left in it.
func (h *Hub) leftLocked(r *room, m Member) {
	r.setCounts(h.backend.Leave(r.name, m))
	h.observer.Observe(r.name, m, false)
	if r.empty() {
		if h.rooms[r.name] == r {
			h.dropLocked(r)
		}
		return
	}
	h.scheduleLocked(r)
}

// dropLocked forgets an empty room so that memory returns to idle.
func (h *Hub) dropLocked(r *room) {
	if r.timer != nil {
		r.timer.Stop()
		r.timer = nil
	}
	for _, gs := range r.ghosts {
		for _, g := range gs {
			g.timer.Stop()
			h.ghostGoneLocked(g)
		}
	}
	r.ghosts = nil
	h.unchargeLocked(r)
	if r.watchOnly {
		h.watchOnly--
		r.watchOnly = false
	}
	if r.idle != nil {
		h.idle.Remove(r.idle)
		r.idle = nil
	}
	delete(h.rooms, r.name)
}

// Count returns the room's people.
func (h *Hub) Count(roomName string) int { return h.backend.Count(roomName).People }

// Room returns the room's count and, with a shared backend, its per-node
// shares and whether the view is degraded.
func (h *Hub) Room(roomName string) RoomInfo {
	c := h.backend.Count(roomName)
	info := RoomInfo{RoomCount: RoomCount{Room: roomName, Count: c.People, Connections: c.Connections}}
	if s, ok := h.backend.(Shared); ok {
		info.Nodes = s.Shares(roomName)
		info.Degraded = s.Health() != nil
	}
	return info
}

// Members returns up to limit of the room's signed-in members whose ID
// sorts after after ("" for the first), sorted by ID, with their
// connections on every node; more reports whether others follow. people
// is the room's count of people, signed in or not.
func (h *Hub) Members(roomName, after string, limit int) (page []MemberCount, people int, more bool) {
	all := h.backend.SignedAfter(roomName, after) // sorted here, without the backend's lock
	people = h.backend.Count(roomName).People
	slices.SortFunc(all, func(a, b MemberCount) int { return strings.Compare(a.ID, b.ID) })
	if len(all) > limit {
		return all[:limit:limit], people, true
	}
	return all, people, false
}

// Health is nil unless a shared backend's view of the other nodes is not
// current; see Shared.
func (h *Hub) Health() error {
	if s, ok := h.backend.(Shared); ok {
		return s.Health()
	}
	return nil
}

// Changed tells the hub that the backend's count of roomName moved for a
// reason other than this hub's own joins and leaves: another node's streams.
// The backend must not hold its own locks while calling it.
func (h *Hub) Changed(roomName string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	r := h.rooms[roomName]
	if r == nil {
		return // no stream or watcher of this node is in it: no one to tell
	}
	n := h.backend.Count(roomName)
	if n == r.counts && r.watchers == 0 {
		return // (with watchers, the members may have changed)
	}
	r.setCounts(n)
	h.scheduleLocked(r)
}

// Rooms returns up to limit non-empty rooms that keep accepts (all if keep
// is nil), and how many of those there are in all.
func (h *Hub) Rooms(limit int, keep func(string) bool) ([]RoomCount, int) {
	return h.backend.Rooms(limit, keep)
}

// Stats is a snapshot of the hub for metrics.
type Stats struct {
	Streams int // open streams on this node
	Rooms   int // rooms with streams on this node, or watched here
	// Watched counts the rooms that only watchers hold.
	Watched int
}

// Published returns how many publishes the hub made so far, in all rooms.
func (h *Hub) Published() uint64 { return h.published.Load() }

// PeakStreams returns the most streams open at once since the last call
// (or the start), and begins the next period from those open now: a wave
// shorter than the caller's sampling interval is seen all the same.
func (h *Hub) PeakStreams() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	p := max(h.peak, h.streams)
	h.peak = h.streams
	return p
}

// Stats returns the current numbers.
func (h *Hub) Stats() Stats {
	h.mu.Lock()
	defer h.mu.Unlock()
	return Stats{Streams: h.streams, Rooms: len(h.rooms), Watched: h.watchOnly}
}

// Close makes Join fail with ErrClosed from now on, and ends the grace of
// closed streams. Streams already open stay until they Leave; the transport
// ends them. It returns a channel that
// is closed once the last stream has left.
func (h *Hub) Close() <-chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.closed {
		h.closed = true
		h.drained = make(chan struct{})
		if h.streams == 0 {
			close(h.drained)
		}
		// Closed streams in their grace leave now: this node is going.
		for _, r := range h.rooms {
			for id, gs := range r.ghosts {
				delete(r.ghosts, id)
				for _, g := range gs {
					g.timer.Stop()
					h.ghostGoneLocked(g)
					h.leftLocked(r, g.member)
				}
			}
		}
	}
	return h.drained
}

// noObserver is the Observer of a hub that has none.
type noObserver struct{}

func (noObserver) Observe(string, Member, bool) {}
