package presence

import (
	"fmt"
	"time"
)

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
	// End, if set, ends the stream: the hub calls it at most once, from
	// any goroutine, without blocking and without its lock held, when a
	// Disconnect names the stream (Hub.Disconnect). The stream should then
	// Leave, as on any end.
	End func()
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
	// Events is the JSON data of the stream's first events: its count,
	// and its presence, with the members above if asked for.
	Events Events
	// Update is the room's latest Update as of the join: the stream waits
	// on its Replaced channel, so that it misses no later publish.
	Update *Update
}

// JoinAs puts a new stream of m in roomName. With o.Members, the stream
// follows the room's signed-in members: Joined has them, and every later
// Update of the room says who joined and left.
func (h *Hub) JoinAs(roomName string, m Member, o JoinOptions) (*Stream, Joined, error) {
	st, j, signed, err := h.join(roomName, m, o)
	if err != nil {
		return nil, j, err
	}
	if o.Members {
		// signed is never written to once stored: sorting needs no lock.
		j.Members, j.Truncated = sortedMembers(signed, h.capMem)
	}
	j.Events = Events{Count: mustJSON(j.Counts.People), Presence: presenceJSON(roomName, j.Counts, o.Members, j.Members, j.Truncated)}
	return st, j, nil
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
	if m.Signed && h.blockedLocked(m.ID) {
		return nil, Joined{}, nil, ErrBlocked
	}
	if r == nil || r.watchOnly {
		// Rooms that hold only people in their grace never keep out a
		// room of people who are here: the oldest gives way. Rooms that
		// only watchers hold are bounded on their own (watch.go).
		if len(h.rooms)-h.watchOnly >= h.maxRooms && !h.evictIdleLocked() {
			return nil, Joined{}, nil, ErrRoomLimit
		}
	}
	if r == nil {
		r = newRoom(roomName)
		h.rooms[roomName] = r
	}
	if g := h.takeGhostLocked(r, m.ID); g == nil {
		counts, err := h.backend.Join(roomName, m)
		if err != nil {
			if r.empty() {
				h.dropLocked(r)
			}
			return nil, Joined{}, nil, fmt.Errorf("join %s: %w", roomName, err)
		}
		r.setCounts(counts)
		h.observer.Observe(roomName, m, true)
	}
	// else: the person came back within the grace and takes the place of
	// their closed stream: no one sees a change.
	h.addSourceLocked(src, 1)
	r.local++
	h.streams++
	h.peak = max(h.peak, h.streams)
	h.idleLocked(r)
	st := &Stream{hub: h, room: r, member: m, watches: members, source: src, from: o.Source, since: time.Now(), endh: endHandle{end: o.End}}
	h.trackLocked(&st.endh, signedID(m), r)
	// Read under the lock that every publish takes first: any publish
	// after this join closes this Update's Replaced channel.
	j := Joined{Counts: r.counts, Update: r.latest.Load()}
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

// signedID is m's ID if m is signed in, else "": only signed-in users are
// disconnected by name.
func signedID(m Member) string {
	if m.Signed {
		return m.ID
	}
	return ""
}
