package presence

import (
	"slices"
	"strings"
)

// Tally adds up one room's members: anonymous streams, and people by ID
// with their connections. Backends keep one per room; it is not safe for
// concurrent use.
type Tally struct {
	anon    int
	conns   int
	persons map[string]*person
}

type person struct {
	conns  int
	name   string
	signed bool
}

// Add changes m's connections by delta (negative to remove). A person
// whose connections reach zero is gone; counts never go below zero.
func (t *Tally) Add(m Member, delta int) {
	if m.ID == "" {
		delta = max(delta, -t.anon)
		t.anon += delta
		t.conns += delta
		return
	}
	p := t.persons[m.ID]
	if p == nil {
		if delta <= 0 {
			return
		}
		if t.persons == nil {
			t.persons = make(map[string]*person)
		}
		p = &person{}
		t.persons[m.ID] = p
	}
	delta = max(delta, -p.conns)
	p.conns += delta
	t.conns += delta
	if delta >= 0 {
		p.name, p.signed = m.Name, m.Signed
	}
	if p.conns == 0 {
		delete(t.persons, m.ID)
	}
}

// Counts returns the room's people and connections.
func (t *Tally) Counts() Counts {
	return Counts{People: t.anon + len(t.persons), Connections: t.conns}
}

// Empty reports whether no one is in the room.
func (t *Tally) Empty() bool { return t.conns == 0 }

// Anonymous returns the number of anonymous streams.
func (t *Tally) Anonymous() int { return t.anon }

// Person returns the connections of person id and how it is known.
func (t *Tally) Person(id string) (conns int, name string, signed bool) {
	if p := t.persons[id]; p != nil {
		return p.conns, p.name, p.signed
	}
	return 0, "", false
}

// Each calls f for every person, in no particular order.
func (t *Tally) Each(f func(id string, conns int, name string, signed bool)) {
	for id, p := range t.persons {
		f(id, p.conns, p.name, p.signed)
	}
}

// Signed returns the signed-in members: name by ID.
func (t *Tally) Signed() map[string]string {
	m := make(map[string]string)
	for id, p := range t.persons {
		if p.signed {
			m[id] = p.name
		}
	}
	return m
}

// SignedAfter returns the signed-in members whose ID sorts after after,
// with their connections, in no order.
func (t *Tally) SignedAfter(after string) []MemberCount {
	var out []MemberCount
	for id, p := range t.persons {
		if p.signed && id > after {
			out = append(out, MemberCount{ID: id, Name: p.name, Connections: p.conns})
		}
	}
	return out
}

func byID(a, b MemberInfo) int { return strings.Compare(a.ID, b.ID) }

// sortedMembers lists members by ID, at most limit of them (all if limit
// < 0), and whether some were left out.
func sortedMembers(m map[string]string, limit int) ([]MemberInfo, bool) {
	out := make([]MemberInfo, 0, len(m))
	for id, name := range m {
		out = append(out, MemberInfo{ID: id, Name: name})
	}
	slices.SortFunc(out, byID)
	if limit >= 0 && len(out) > limit {
		return out[:limit:limit], true
	}
	return out, false
}

// Tallies is a Tally per room. Rooms whose tally empties are removed, so
// that memory returns to idle. Not safe for concurrent use.
type Tallies map[string]*Tally

// Add changes m's connections in room by delta and returns the room's counts.
func (ts Tallies) Add(room string, m Member, delta int) Counts {
	t := ts[room]
	if t == nil {
		t = &Tally{}
		ts[room] = t
	}
	t.Add(m, delta)
	if t.Empty() {
		delete(ts, room)
	}
	return t.Counts()
}

// Count returns room's counts; zero for a room nobody is in.
func (ts Tallies) Count(room string) Counts {
	if t := ts[room]; t != nil {
		return t.Counts()
	}
	return Counts{}
}

// Signed returns room's signed-in members: name by ID.
func (ts Tallies) Signed(room string) map[string]string {
	if t := ts[room]; t != nil {
		return t.Signed()
	}
	return map[string]string{}
}

// SignedAfter returns room's signed-in members whose ID sorts after after,
// with their connections, in no order.
func (ts Tallies) SignedAfter(room, after string) []MemberCount {
	if t := ts[room]; t != nil {
		return t.SignedAfter(after)
	}
	return nil
}

// List returns the counts of every room keep accepts (all if keep is
// nil), unsorted (see LimitRooms).
func (ts Tallies) List(keep func(string) bool) []RoomCount {
	all := make([]RoomCount, 0, len(ts))
	for name, t := range ts {
		if keep != nil && !keep(name) {
			continue
		}
		c := t.Counts()
		all = append(all, RoomCount{Room: name, Count: c.People, Connections: c.Connections})
	}
	return all
}
