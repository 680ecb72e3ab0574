package presence

import (
	"container/list"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults for HubOptions fields left zero.
const (
	DefaultWindow     = 100 * time.Millisecond
	DefaultMaxStreams = 10000
	DefaultMaxRooms   = 10000
)

// How a room coalesces. A change in a quiet room is published at once;
// after a publish the room waits at least the base window. If changes are
// still coming when the window ends (a ramp, a mass disconnect), it waits
// until they, and the last fan-out, pause for 1/settleFraction of the
// window, but no longer than the busy window: windowFactor times the last fan-out's duration, between one
// and maxWindowFactor base windows. A fixed window makes a ramp of N joins
// cost O(N^2) deliveries, none of which anyone needs but the last; this way
// a busy room publishes rarely, and the moment it calms down.
const (
	settleFraction  = 2 // settle = window / settleFraction
	windowFactor    = 8
	maxWindowFactor = 10
)

// HubOptions configures a Hub. The zero value is usable.
type HubOptions struct {
	// Window is the coalescing window: a room publishes at most one count
	// per window, and a change in a quiet room is published at once.
	Window time.Duration
	// MaxStreams caps the streams this node holds.
	MaxStreams int
	// MaxRooms caps the rooms this node holds streams in. When it is
	// reached, a new room takes the place of the room that has held only
	// closed streams in their grace the longest, if any: such rooms never
	// keep out people who are here.
	MaxRooms int
	// Grace is how long a person (a member with an ID) whose stream closed
	// still counts: a stream of the same person within it takes the closed
	// one's place and nothing changes, as on a page refresh. 0: none.
	// Anonymous streams leave at once, and so does a stream that was open
	// less than the grace itself: a grace is earned by being there, so that
	// opening and closing streams cheaply makes no phantom people. Every
	// closed stream still counted at time t was open at t-Grace, so those
	// in their grace never outnumber the streams open one grace before.
	// A stream that takes over a closed one earns its own grace anew.
	Grace time.Duration
	// MaxGracePerSource bounds the closed streams of one source
	// (JoinOptions.Source) in their grace; a stream of a source at the
	// bound leaves at once. 0: no bound. Earning a grace takes a stream
	// held for the grace, so without it one source holding n streams and
	// replacing each by a new made-up person once a grace could show up
	// to 2n people; with it, n plus this bound.
	MaxGracePerSource int
	// MaxPerSource bounds the streams of one source (JoinOptions.Source),
	// open plus closed in their grace; 0: no bound. A person taking over
	// their own closed stream from the same source is never refused.
	MaxPerSource int
	// MembersCap bounds the member lists handed out (DefaultMembersCap if
	// 0).
	MembersCap int
}

// DefaultMembersCap is the default of HubOptions.MembersCap.
const DefaultMembersCap = 100

// Hub tracks the streams of this node by room and tells the Notifier the
// counts, coalesced. One Hub serves the whole process.
type Hub struct {
	backend      Backend
	notify       Notifier
	window       time.Duration
	maxWindow    time.Duration
	maxStr       int
	maxRooms     int
	grace        time.Duration
	capMem       int
	maxSource    int
	maxGraceFrom int

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
}

// room is the hub's state of one room on this node. Fields under Hub.mu
// unless marked otherwise.
type room struct {
	name       string
	pub        Publisher   // from Notifier.RoomOpened
	local      int         // streams of this node in the room
	counts     Counts      // latest counts from the backend
	published  Counts      // last counts handed to Publish (valid once seq > 0)
	force      bool        // publish even if the counts did not change
	timer      *time.Timer // pending publish, nil if none
	lastPub    time.Time   // when the last publish started
	lastChange time.Time   // when the count last changed
	changes    int         // changes since the last publish

	ghosts       map[string][]*ghost // closed streams in their grace, by member ID
	idle         *list.Element       // in Hub.idle while local == 0 and ghosts remain
	watchers     int                 // streams that follow the members
	members      map[string]string   // signed-in members as last published; while watchers > 0
	seq          uint64              // of the last publish
	pubMu        sync.Mutex          // serialises Publish calls of this room
	lastDelivery atomic.Int64        // unix nanos of the latest delivery to a stream
	// The last few publishes, by seq % len: their seq, start and latest
	// delivery (unix nanos), so that a delivery that comes after the next
	// publish started still counts toward its own publish's fan-out.
	recent [4]struct{ seq, start, last atomic.Int64 }
}

// NewHub returns a Hub over backend that tells notify about counts.
func NewHub(backend Backend, notify Notifier, opts HubOptions) (*Hub, error) {
	if backend == nil || notify == nil {
		return nil, fmt.Errorf("presence: backend and notifier are required")
	}
	if opts.Window < 0 || opts.MaxStreams < 0 || opts.MaxRooms < 0 || opts.Grace < 0 || opts.MembersCap < 0 || opts.MaxPerSource < 0 || opts.MaxGracePerSource < 0 {
		return nil, fmt.Errorf("presence: window, grace and limits must not be negative")
	}
	if opts.MembersCap == 0 {
		opts.MembersCap = DefaultMembersCap
	}
	if opts.Window == 0 {
		opts.Window = DefaultWindow
	}
	if opts.MaxStreams == 0 {
		opts.MaxStreams = DefaultMaxStreams
	}
	if opts.MaxRooms == 0 {
		opts.MaxRooms = DefaultMaxRooms
	}
	return &Hub{
		backend:      backend,
		notify:       notify,
		window:       opts.Window,
		maxWindow:    maxWindowFactor * opts.Window,
		maxStr:       opts.MaxStreams,
		maxRooms:     opts.MaxRooms,
		grace:        opts.Grace,
		capMem:       opts.MembersCap,
		maxSource:    opts.MaxPerSource,
		maxGraceFrom: opts.MaxGracePerSource,
		graceFrom:    make(map[string]int),
		rooms:        make(map[string]*room),
		idle:         list.New(),
		sources:      make(map[string]int),
	}, nil
}

// Stream is one client's place in a room, from Join to Leave.
type Stream struct {
	hub     *Hub
	room    *room
	member  Member
	seen    Counts // the counts returned by Join, the stream's first
	watches bool   // follows the members
	source  string // JoinOptions.Source, if sources are bounded
	from    string // JoinOptions.Source, always
	since   time.Time
	once    sync.Once
}

// ghost is a closed stream of a person, counted until its grace ends.
type ghost struct {
	member Member
	source string // the closed stream's, still counted against it
	from   string // the closed stream's JoinOptions.Source, for MaxGracePerSource
	timer  *time.Timer
}

// Room returns the name of the stream's room.
func (s *Stream) Room() string { return s.room.name }

// Publisher returns what Notifier.RoomOpened returned for the stream's room.
func (s *Stream) Publisher() Publisher { return s.room.pub }

// Delivered tells the hub that the count event of publish seq (the seq the
// Notifier was given) reached this stream's socket. The hub learns from it
// how long a fan-out takes.
func (s *Stream) Delivered(seq uint64) {
	now := time.Now().UnixNano()
	r := s.room
	r.lastDelivery.Store(now)
	p := &r.recent[seq%uint64(len(r.recent))]
	if p.seq.Load() != int64(seq) {
		return // too old to matter
	}
	p.last.Store(now) // deliveries of one publish come about in order: no need for a max
}

// setCounts records a change of r's counts.
func (r *room) setCounts(c Counts) {
	r.counts = c
	r.lastChange = time.Now()
	r.changes++
}

// stale reports whether r's counts differ from the last publish, or there
// was none.
func (r *room) stale() bool { return r.seq == 0 || r.counts != r.published }

// fanout is how long the last publishes took to reach their last stream: the
// longer of the latest one (perhaps still going) and the one before.
func (r *room) fanout() time.Duration {
	n := uint64(len(r.recent))
	took := func(i uint64) int64 {
		p := &r.recent[i%n]
		return max(0, p.last.Load()-p.start.Load())
	}
	return time.Duration(max(took(r.seq), took(r.seq+n-1)))
}

// Leave takes the stream out of its room. Calling it again does nothing.
func (s *Stream) Leave() {
	s.once.Do(func() { s.hub.leave(s) })
}

// Join puts a new anonymous stream in roomName and returns it with the
// room's people, which include the new stream.
func (h *Hub) Join(roomName string) (*Stream, int, error) {
	st, j, err := h.JoinAs(roomName, Member{}, JoinOptions{})
	return st, j.Counts.People, err
}

// JoinOptions are the optional parts of a join.
type JoinOptions struct {
	// Members: the stream follows the room's signed-in members.
	Members bool
	// Source says where the stream comes from, as an opaque key (the
	// transport's client address), for HubOptions.MaxPerSource. "" is
	// bounded by nothing.
	Source string
}

// Joined is what a new stream starts from.
type Joined struct {
	Counts Counts // including the new stream
	// With members asked for: the signed-in members now, sorted by ID and
	// capped. Publishes after Seq carry who joined and left relative to
	// the one before; the first of them should be taken whole (Members),
	// since the list above may be newer than publish Seq.
	Members   []MemberInfo
	Truncated bool
	Seq       uint64
}

// JoinAs puts a new stream of m in roomName. With o.Members, the stream
// follows the room's signed-in members: Joined has them, and every later
// Update of the room says who joined and left.
func (h *Hub) JoinAs(roomName string, m Member, o JoinOptions) (*Stream, Joined, error) {
	st, j, signed, err := h.join(roomName, m, o)
	if err == nil && o.Members {
		// signed is never written to once stored: sorting needs no lock.
		j.Members, j.Truncated = sortedMembers(signed, h.capMem)
	}
	return st, j, err
}

// join is JoinAs under the lock; with members, it returns the signed-in
// members for JoinAs to list.
func (h *Hub) join(roomName string, m Member, o JoinOptions) (*Stream, Joined, map[string]string, error) {
	members := o.Members
	if err := ValidateRoom(roomName); err != nil {
		return nil, Joined{}, nil, err
	}
	src := o.Source
	if h.maxSource == 0 {
		src = "" // nothing to bound: keep no map
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, Joined{}, nil, ErrClosed
	}
	r := h.rooms[roomName]
	if src != "" && h.sources[src] >= h.maxSource {
		// A person coming back from the same source takes their own place
		// and adds nothing.
		if g := h.peekGhostLocked(r, m.ID); g == nil || g.source != src {
			return nil, Joined{}, nil, ErrSourceLimit
		}
	}
	if h.streams >= h.maxStr {
		return nil, Joined{}, nil, ErrStreamLimit
	}
	if r == nil {
		// Rooms that hold only people in their grace never keep out a
		// room of people who are here: the oldest gives way.
		if len(h.rooms) >= h.maxRooms && !h.evictIdleLocked() {
			return nil, Joined{}, nil, ErrRoomLimit
		}
		r = &room{name: roomName}
		r.pub = h.notify.RoomOpened(roomName)
		h.rooms[roomName] = r
	}
	if g := h.takeGhostLocked(r, m.ID); g == nil {
		counts, err := h.backend.Join(roomName, m)
		if err != nil {
			if r.local == 0 && len(r.ghosts) == 0 {
				h.dropLocked(r)
			}
			return nil, Joined{}, nil, fmt.Errorf("join %s: %w", roomName, err)
		}
		r.setCounts(counts)
	}
	// else: the person came back within the grace and takes the place of
	// their closed stream: no one sees a change.
	h.addSourceLocked(src, 1)
	r.local++
	h.streams++
	h.peak = max(h.peak, h.streams)
	h.idleLocked(r)
	st := &Stream{hub: h, room: r, member: m, seen: r.counts, watches: members, source: src, from: o.Source, since: time.Now()}
	j := Joined{Counts: r.counts}
	var signed map[string]string
	if members {
		signed = h.backend.Signed(roomName)
		if r.watchers == 0 {
			r.members = signed
			r.force = true // so that the next publish carries member fields
		}
		r.watchers++
		j.Seq = r.seq
	}
	if r.stale() {
		// The newcomer starts from counts no publish carried: if they go
		// back to the published value before the next publish, that
		// publish must still happen, or the newcomer keeps them.
		r.force = true
	}
	h.scheduleLocked(r)
	return st, j, signed, nil
}

// peekGhostLocked returns the closed stream of person id in r that a new
// stream of theirs would take over, if any; r may be nil.
func (h *Hub) peekGhostLocked(r *room, id string) *ghost {
	if r == nil || id == "" {
		return nil
	}
	gs := r.ghosts[id]
	if len(gs) == 0 {
		return nil
	}
	return gs[len(gs)-1]
}

// takeGhostLocked removes and returns a closed stream of person id still
// in its grace, if any.
func (h *Hub) takeGhostLocked(r *room, id string) *ghost {
	g := h.peekGhostLocked(r, id)
	if g == nil {
		return nil
	}
	h.removeGhostLocked(r, id, len(r.ghosts[id])-1)
	g.timer.Stop() // if it fired already, expire finds it gone
	return g
}

// addSourceLocked adds d to the streams and ghosts counted for src,
// keeping no zero entries so that the map empties with the hub.
func (h *Hub) addSourceLocked(src string, d int) { addCount(h.sources, src, d) }

// addCount adds d to m[key], keeping no zero entries, so that a map of
// counts empties as what it counts goes; "" is not counted.
func addCount(m map[string]int, key string, d int) {
	if key == "" {
		return
	}
	if n := m[key] + d; n > 0 {
		m[key] = n
	} else {
		delete(m, key)
	}
}

// idleLocked keeps r in h.idle exactly while it is a room of this node
// with no open stream and people in their grace, in the order rooms became
// so.
func (h *Hub) idleLocked(r *room) {
	idle := r.local == 0 && len(r.ghosts) > 0 && h.rooms[r.name] == r
	switch {
	case idle && r.idle == nil:
		r.idle = h.idle.PushBack(r)
	case !idle && r.idle != nil:
		h.idle.Remove(r.idle)
		r.idle = nil
	}
}

// evictIdleLocked ends the grace of everyone in the room that has held
// only people in their grace the longest, and forgets that room. It
// reports false if there is no such room. Each ghost is ended at most
// once, so this costs O(1) amortised per ghost made.
func (h *Hub) evictIdleLocked() bool {
	e := h.idle.Front()
	if e == nil {
		return false
	}
	r := e.Value.(*room)
	for id, gs := range r.ghosts {
		delete(r.ghosts, id)
		for _, g := range gs {
			g.timer.Stop() // if it fired already, expire finds it gone
			h.ghostGoneLocked(g)
			r.counts = h.backend.Leave(r.name, g.member)
		}
	}
	h.dropLocked(r) // no stream of this node is in it to tell
	return true
}

// removeGhostLocked ends the grace of r.ghosts[id][i].
func (h *Hub) removeGhostLocked(r *room, id string, i int) {
	gs := r.ghosts[id]
	h.ghostGoneLocked(gs[i])
	if len(gs) == 1 {
		delete(r.ghosts, id)
	} else {
		r.ghosts[id] = slices.Delete(gs, i, i+1)
	}
}

// ghostGoneLocked takes g, whose grace ends, out of the hub's tallies.
func (h *Hub) ghostGoneLocked(g *ghost) {
	h.ghosts--
	h.addSourceLocked(g.source, -1)
	if h.maxGraceFrom > 0 {
		addCount(h.graceFrom, g.from, -1)
	}
}

func (h *Hub) leave(s *Stream) {
	h.mu.Lock()
	defer h.mu.Unlock()
	r := s.room
	r.local--
	h.streams--
	if s.watches {
		if r.watchers--; r.watchers == 0 {
			r.members = nil
		}
	}
	if s.member.ID != "" && h.grace > 0 && !h.closed && h.ghosts < h.maxStr && time.Since(s.since) >= h.grace &&
		(h.maxGraceFrom == 0 || s.from == "" || h.graceFrom[s.from] < h.maxGraceFrom) {
		// A person's stream that was there a grace at least: it counts
		// on for the grace, in case they come back (a refresh, a
		// navigation). Its source stays counted with it.
		g := &ghost{member: s.member, source: s.source, from: s.from}
		if h.maxGraceFrom > 0 {
			addCount(h.graceFrom, g.from, 1)
		}
		g.timer = time.AfterFunc(h.grace, func() { h.expire(r, g) })
		if r.ghosts == nil {
			r.ghosts = make(map[string][]*ghost)
		}
		r.ghosts[s.member.ID] = append(r.ghosts[s.member.ID], g)
		h.ghosts++
		h.idleLocked(r)
	} else {
		h.addSourceLocked(s.source, -1)
		h.leftLocked(r, s.member)
		h.idleLocked(r)
	}
	if h.closed && h.streams == 0 {
		close(h.drained)
	}
}

// expire ends the grace of g: the person's stream leaves for good, unless
// it was taken over meanwhile.
func (h *Hub) expire(r *room, g *ghost) {
	h.mu.Lock()
	defer h.mu.Unlock()
	gs := r.ghosts[g.member.ID]
	i := slices.Index(gs, g)
	if i < 0 || h.rooms[r.name] != r {
		return // taken over, or the room is gone
	}
	h.removeGhostLocked(r, g.member.ID, i)
	h.leftLocked(r, g.member)
	h.idleLocked(r)
}

// leftLocked takes m out of r in the backend and publishes the change, or
// drops r if no one of this node is left in it.
func (h *Hub) leftLocked(r *room, m Member) {
	r.setCounts(h.backend.Leave(r.name, m))
	if r.local == 0 && len(r.ghosts) == 0 {
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
	if r.idle != nil {
		h.idle.Remove(r.idle)
		r.idle = nil
	}
	delete(h.rooms, r.name)
	h.notify.RoomClosed(r.name, r.pub)
}

// Subscribed is called once the stream receives every publish of its room
// (the transport may register it some time after Join). If the count moved
// since the stream was sent its first count, it may have missed that
// publish, so the room publishes again at its next turn.
func (s *Stream) Subscribed() {
	h, r := s.hub, s.room
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.rooms[r.name] == r && r.counts != s.seen {
		r.force = true
		h.scheduleLocked(r)
	}
}

// scheduleLocked arranges one publish of r, no sooner than a window after
// the last one. A publish already pending will carry the newest count.
func (h *Hub) scheduleLocked(r *room) {
	if r.timer == nil {
		r.timer = time.AfterFunc(max(0, time.Until(r.lastPub.Add(h.window))), func() { h.flush(r) })
	}
}

// busyWindow is the longest a busy room waits between publishes: a multiple
// of how long the last fan-out took, at least the base window and at most
// maxWindowFactor of them.
func (h *Hub) busyWindow(r *room) time.Duration {
	return min(max(h.window, windowFactor*r.fanout()), h.maxWindow)
}

// flush publishes r's newest count if it changed or a refresh asked for it,
// unless the count is still moving and the busy window allows a wait.
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
	// Settled: no change, and no delivery of the last fan-out, for a while.
	// While a fan-out runs, joins and leaves are held up by it, so a pause
	// in changes then is no sign that the room has calmed down.
	lastActivity := max(r.lastChange.UnixNano(), r.lastDelivery.Load())
	settled := time.Unix(0, lastActivity).Add(h.window / settleFraction)
	// A single change after the last fan-out has finished is not a storm:
	// it goes out now. (During a fan-out, changes are held up by it, so one
	// change then may be the first of many, as when half a room drops.)
	// Deliveries come microseconds apart while a fan-out runs: a tenth of a
	// window without one means it has finished.
	fanoutDone := time.Unix(0, r.lastDelivery.Load()).Add(h.window / 10)
	single := r.changes <= 1 && !now.Before(fanoutDone)
	if latest := r.lastPub.Add(h.busyWindow(r)); !single && now.Before(settled) && now.Before(latest) {
		r.timer = time.AfterFunc(min(settled.Sub(now), latest.Sub(now)), func() { h.flush(r) })
		h.mu.Unlock()
		return
	}
	u := Update{Counts: r.counts}
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
	if u.Tracked {
		// signed is never written to once stored: sorting needs no lock.
		u.Members, u.Truncated = sortedMembers(signed, h.capMem)
	}

	p := &r.recent[u.Seq%uint64(len(r.recent))]
	p.seq.Store(-1) // no delivery may count while the slot is rewritten
	p.start.Store(now.UnixNano())
	p.last.Store(0)
	p.seq.Store(int64(u.Seq))
	r.pub.Publish(u)
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
		return // no stream of this node is in it: no one to tell
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

// Publishers returns the Publisher of every room this node holds streams in.
func (h *Hub) Publishers() []Publisher {
	h.mu.Lock()
	defer h.mu.Unlock()
	ps := make([]Publisher, 0, len(h.rooms))
	for _, r := range h.rooms {
		ps = append(ps, r.pub)
	}
	return ps
}

// Stats is a snapshot of the hub for metrics.
type Stats struct {
	Streams int // open streams on this node
	Rooms   int // rooms with streams on this node
}

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
	return Stats{Streams: h.streams, Rooms: len(h.rooms)}
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
