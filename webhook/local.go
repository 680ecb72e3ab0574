package webhook

import (
	"container/list"
	"strings"
	"time"

	"github.com/presence/presence/presence"
)

// local is this node's own presence per room, as the hub tells it, and the
// transitions it makes that wait to settle. It is guarded by Notifier.mu:
// the hub writes it under its own lock, the owner goroutine takes from it.
//
// Its size follows the hub's: a room while this node has streams (or
// closed ones in their grace) in it, a person while they do, and at most
// one waiting transition per room and per person, since a transition that
// undoes a waiting one removes both.
type local struct {
	rooms   map[string]*localRoom
	pending *list.List            // of *change, oldest first
	index   map[key]*list.Element // the waiting change of each key
}

// localRoom is one room's streams on this node: all of them, and the
// signed-in people's by member ID.
type localRoom struct {
	conns   int
	persons map[string]int
}

// key names what a transition is about: a room (id "") or a person in it.
type key struct{ room, id string }

// change is a transition waiting to settle.
type change struct {
	t  presence.Transition
	k  key
	at time.Time
}

func newLocal() local {
	return local{rooms: make(map[string]*localRoom), pending: list.New(), index: make(map[key]*list.Element)}
}

// observe applies a stream of m arriving in or leaving room at now, and
// records the transitions it makes: the room first and then the person on
// arrival, the other way round on leaving, so that a receiver never hears
// of a member of an empty room.
func (l *local) observe(room string, m presence.Member, arrived bool, now time.Time) {
	r := l.rooms[room]
	if r == nil {
		if !arrived {
			return // never seen arrive (a room not watched, or before we started)
		}
		r = &localRoom{}
		l.rooms[room] = r
	}
	d := 1
	if !arrived {
		d = -1
	}
	wasIn := r.conns > 0
	r.conns = max(0, r.conns+d)
	person := m.Signed && m.ID != ""
	personWas, personNow := false, false
	if person {
		if r.persons == nil {
			r.persons = make(map[string]int)
		}
		n := r.persons[m.ID]
		personWas = n > 0
		if n = max(0, n+d); n > 0 {
			r.persons[m.ID] = n
			personNow = true
		} else {
			delete(r.persons, m.ID)
		}
	}
	isIn := r.conns > 0
	member := presence.MemberInfo{ID: m.ID, Name: m.Name}
	if arrived && !wasIn {
		l.push(presence.Transition{Room: room, Arrived: true}, now)
	}
	if person && personWas != personNow {
		l.push(presence.Transition{Room: room, Member: member, Arrived: personNow}, now)
	}
	if !arrived && wasIn && !isIn {
		l.push(presence.Transition{Room: room}, now)
	}
	if !isIn {
		delete(l.rooms, room)
	}
}

// push records t, unless it undoes the waiting change of the same key: then
// neither is ever told.
func (l *local) push(t presence.Transition, now time.Time) {
	k := key{t.Room, t.Member.ID}
	if e, ok := l.index[k]; ok {
		l.pending.Remove(e)
		delete(l.index, k)
		return
	}
	l.index[k] = l.pending.PushBack(&change{t: t, k: k, at: now})
}

// take removes and returns, oldest first, the changes recorded up to
// until.
func (l *local) take(until time.Time) []presence.Transition {
	var out []presence.Transition
	for e := l.pending.Front(); e != nil; e = l.pending.Front() {
		c := e.Value.(*change)
		if c.at.After(until) {
			break
		}
		l.pending.Remove(e)
		delete(l.index, c.k)
		out = append(out, c.t)
	}
	return out
}

// next is when the oldest waiting change was recorded, and whether there
// is one.
func (l *local) next() (time.Time, bool) {
	if e := l.pending.Front(); e != nil {
		return e.Value.(*change).at, true
	}
	return time.Time{}, false
}

// eventOf is the webhook event of a transition, numbered seq.
func eventOf(t presence.Transition, seq uint64) Event {
	e := Event{Room: t.Room, Seq: seq}
	switch {
	case t.Member.ID == "" && t.Arrived:
		e.Name = "room_occupied"
	case t.Member.ID == "":
		e.Name = "room_vacated"
	case t.Arrived:
		e.Name = "member_joined"
	default:
		e.Name = "member_left"
	}
	if t.Member.ID != "" {
		e.UserID, e.UserName = strings.TrimPrefix(t.Member.ID, "u:"), t.Member.Name
	}
	return e
}
