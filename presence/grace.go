package presence

import (
	"slices"
	"time"
)

// ghost is a closed stream of a person, counted until its grace ends.
type ghost struct {
	member Member
	source string // the closed stream's, still counted against it
	from   string // the closed stream's JoinOptions.Source, for MaxGracePerSource
	timer  *time.Timer
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
// so; and counted as watch-only while only watchers hold it.
func (h *Hub) idleLocked(r *room) {
	h.watchOnlyLocked(r)
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
			h.observer.Observe(r.name, g.member, false)
		}
	}
	if r.follows > 0 {
		// Watchers still follow it: it stays, as a room only they hold.
		h.idleLocked(r)
		h.scheduleLocked(r)
		return true
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
	addCount(h.graceOf, signedID(g.member), -1)
}

func (h *Hub) leave(s *Stream) {
	h.mu.Lock()
	defer h.mu.Unlock()
	r := s.room
	h.untrackLocked(&s.endh, signedID(s.member), r)
	r.local--
	h.streams--
	if s.watches {
		if r.watchers--; r.watchers == 0 {
			r.members = nil
		}
	}
	if s.member.ID != "" && h.grace > 0 && !h.closed && !s.endh.ended && h.ghosts < h.maxStr && time.Since(s.since) >= h.grace &&
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
		addCount(h.graceOf, signedID(s.member), 1)
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
