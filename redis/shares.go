package redis

import (
	"strconv"
	"strings"
	"time"

	"github.com/presence/presence/presence"
)

// Backend is a presence.Backend and a presence.Shared. The second is found
// by type assertion: these lines make a drifted signature a build error
// rather than per-node shares gone quietly.
var (
	_ presence.Backend = (*Backend)(nil)
	_ presence.Shared  = (*Backend)(nil)
)

// Fields of a node's hash besides its rooms: its version and incarnation.
// ':' is not allowed in room names, so they cannot clash with a room.
const (
	verField = ":v"
	incField = ":i"
)

// view is every node's shares as this node knows them: its own, exact, and
// the others' as last heard. It is guarded by Backend.mu, held by every
// caller of its methods.
type view struct {
	local   presence.Tallies     // this node's streams by room
	all     presence.Tallies     // every node's, this one's included
	dirty   map[entry]struct{}   // local entries changed since the last flush
	full    bool                 // the next flush rewrites the whole hash
	ver     uint64               // of this node's last flush
	nodes   map[string]*node     // the other nodes
	dropped map[string]time.Time // nodes forgotten lately, and when: a snapshot read before must not bring them back
}

func newView() view {
	return view{
		local:   make(presence.Tallies),
		all:     make(presence.Tallies),
		dirty:   make(map[entry]struct{}),
		full:    true,
		nodes:   make(map[string]*node),
		dropped: make(map[string]time.Time),
	}
}

// node is what this node knows of another one.
type node struct {
	inc     string
	ver     uint64
	entries map[entry]share
	seen    time.Time // when it was last heard of (monotonic)
}

// entry is one field of a node's hash: a room's anonymous streams (person
// ""), or one person's streams in a room.
type entry struct{ room, person string }

// share is an entry's value: how many streams, and who the person is.
type share struct {
	conns  int
	name   string
	signed bool
}

// field is the entry's name in the hash: the room, then a tab and the
// person for a person's entry (tabs are in neither room names nor ids).
func (e entry) field() string {
	if e.person == "" {
		return e.room
	}
	return e.room + "\t" + e.person
}

// value is the share's text in the hash: the count of streams, then for a
// person "\t1" or "\t0" (signed in or not) and "\t" and the name.
func (e entry) value(s share) string {
	if e.person == "" {
		return strconv.Itoa(s.conns)
	}
	signed := "0"
	if s.signed {
		signed = "1"
	}
	return strconv.Itoa(s.conns) + "\t" + signed + "\t" + s.name
}

func (e entry) member(s share) presence.Member {
	return presence.Member{ID: e.person, Name: s.name, Signed: s.signed}
}

// parseEntry reads a field and its value back; ok is false for anything
// else, such as the hash's own fields.
func parseEntry(field, value string) (entry, share, bool) {
	room, person, _ := strings.Cut(field, "\t")
	if presence.ValidateRoom(room) != nil {
		return entry{}, share{}, false
	}
	e := entry{room: room, person: person}
	n, rest, _ := strings.Cut(value, "\t")
	conns, err := strconv.Atoi(n)
	if err != nil || conns < 0 {
		return entry{}, share{}, false
	}
	s := share{conns: conns}
	if person != "" {
		signed, name, _ := strings.Cut(rest, "\t")
		s.signed, s.name = signed == "1", name
	}
	return e, s, true
}

// message is what a node publishes: its id, incarnation and version, the
// kind ("d": the entries that changed, "f": all of them, "x": the node
// left) and the entries as field, value pairs.
type message struct {
	Node    string   `json:"n"`
	Inc     string   `json:"i"`
	Ver     uint64   `json:"v"`
	Kind    string   `json:"k"`
	Entries []string `json:"e,omitempty"`
}

// localShare is this node's share of e.
func (v *view) localShare(e entry) share {
	t := v.local[e.room]
	if t == nil {
		return share{}
	}
	if e.person == "" {
		return share{conns: t.Anonymous()}
	}
	conns, name, signed := t.Person(e.person)
	return share{conns: conns, name: name, signed: signed}
}

// Join implements presence.Backend. It never waits on Redis.
func (b *Backend) Join(room string, m presence.Member) (presence.Counts, error) {
	b.mu.Lock()
	b.view.local.Add(room, m, 1)
	c := b.view.all.Add(room, m, 1)
	b.view.dirty[entry{room, m.ID}] = struct{}{}
	b.mu.Unlock()
	poke(b.wake)
	return c, nil
}

// Leave implements presence.Backend.
func (b *Backend) Leave(room string, m presence.Member) presence.Counts {
	b.mu.Lock()
	before := b.view.local.Count(room).Connections
	if b.view.local.Add(room, m, -1).Connections < before {
		b.view.all.Add(room, m, -1)
	}
	b.view.dirty[entry{room, m.ID}] = struct{}{}
	c := b.view.all.Count(room)
	b.mu.Unlock()
	poke(b.wake)
	return c
}

// Count implements presence.Backend: the global counts as this node knows
// them.
func (b *Backend) Count(room string) presence.Counts {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.view.all.Count(room)
}

// Signed implements presence.Backend over every node's streams.
func (b *Backend) Signed(room string) map[string]string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.view.all.Signed(room)
}

// SignedAfter implements presence.Backend over every node's streams.
func (b *Backend) SignedAfter(room, after string) []presence.MemberCount {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.view.all.SignedAfter(room, after)
}

// Rooms implements presence.Backend over every node's rooms.
func (b *Backend) Rooms(limit int, keep func(string) bool) ([]presence.RoomCount, int) {
	b.mu.Lock()
	all := b.view.all.List(keep)
	b.mu.Unlock()
	return presence.LimitRooms(all, limit)
}

// Shares implements presence.Shared: connections per node.
func (b *Backend) Shares(room string) map[string]int {
	b.mu.Lock()
	defer b.mu.Unlock()
	m := make(map[string]int)
	if t := b.view.local[room]; t != nil {
		m[b.id] = t.Counts().Connections
	}
	for id, nd := range b.view.nodes {
		for e, s := range nd.entries {
			if e.room == room && s.conns > 0 {
				m[id] += s.conns
			}
		}
	}
	return m
}

// setNode records node id's entries at version ver: all of them when
// whole, else only those given. It appends the rooms whose counts moved.
func (v *view) setNode(id, inc string, ver uint64, entries map[entry]share, whole bool, changed []string) []string {
	nd := v.nodes[id]
	if nd != nil && nd.inc != inc {
		changed = v.drop(id, changed)
		nd = nil
	}
	if nd == nil {
		nd = &node{inc: inc, entries: make(map[entry]share)}
		v.nodes[id] = nd
	}
	nd.ver, nd.seen = ver, time.Now()
	if whole {
		for e, old := range nd.entries {
			if _, ok := entries[e]; !ok {
				v.all.Add(e.room, e.member(old), -old.conns)
				delete(nd.entries, e)
				changed = append(changed, e.room)
			}
		}
	}
	for e, s := range entries {
		old := nd.entries[e]
		if s == old {
			continue
		}
		v.all.Add(e.room, e.member(s), s.conns-old.conns)
		if s.conns == 0 {
			delete(nd.entries, e)
		} else {
			nd.entries[e] = s
		}
		changed = append(changed, e.room)
	}
	return changed
}

// drop forgets node id and its shares.
func (v *view) drop(id string, changed []string) []string {
	nd := v.nodes[id]
	if nd == nil {
		return changed
	}
	v.dropped[id] = time.Now()
	for e, s := range nd.entries {
		v.all.Add(e.room, e.member(s), -s.conns)
		changed = append(changed, e.room)
	}
	delete(v.nodes, id)
	return changed
}

// entriesOf reads field, value pairs (from a message or a hash) into
// entries, skipping fields that are not entries.
func entriesOf(kv []string) map[entry]share {
	out := make(map[entry]share, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		if e, s, ok := parseEntry(kv[i], kv[i+1]); ok {
			out[e] = s
		}
	}
	return out
}
