package presence

import (
	"cmp"
	"errors"
	"maps"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// recorder remembers every publish of a hub (through Hub.observe).
type recorder struct {
	mu        sync.Mutex
	pubs      []publish
	onPublish func(seq uint64) // if set, called on every publish
}

type publish struct {
	room  string
	count int
	at    time.Time
	u     Update
}

func (r *recorder) record(room string, u *Update) {
	r.mu.Lock()
	r.pubs = append(r.pubs, publish{room, u.Counts.People, time.Now(), *u})
	hook := r.onPublish
	r.mu.Unlock()
	if hook != nil {
		hook(u.Seq)
	}
}

func (r *recorder) published() []publish {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]publish(nil), r.pubs...)
}

// newHub is a hub over memory with the options a test sets: the fields it
// leaves zero take DefaultHubOptions' values (so Grace and the per-source
// bounds stay 0).
func newHub(t *testing.T, opts HubOptions) (*Hub, *recorder) {
	t.Helper()
	return newHubOn(t, NewMemory(), opts)
}

// newHubOn is newHub over b.
func newHubOn(t *testing.T, b Backend, opts HubOptions) (*Hub, *recorder) {
	t.Helper()
	d := DefaultHubOptions()
	opts.Window = cmp.Or(opts.Window, d.Window)
	opts.MaxStreams = cmp.Or(opts.MaxStreams, d.MaxStreams)
	opts.MaxRooms = cmp.Or(opts.MaxRooms, d.MaxRooms)
	opts.MembersCap = cmp.Or(opts.MembersCap, d.MembersCap)
	rec := &recorder{}
	h, err := NewHub(b, opts)
	if err != nil {
		t.Fatal(err)
	}
	h.observe = rec.record
	return h, rec
}

func TestValidateRoom(t *testing.T) {
	for _, ok := range []string{"lobby", "a", "A-Z_0.9", strings.Repeat("x", 64), "a.", ".a", "a..b", "..a", "_", "-"} {
		if err := ValidateRoom(ok); err != nil {
			t.Errorf("%q refused: %v", ok, err)
		}
	}
	for _, bad := range []string{"", strings.Repeat("x", 65), "a b", "a/b", "é", "a\x00", "a:b", "%20", ".", "..", "...", strings.Repeat(".", 64)} {
		if err := ValidateRoom(bad); !errors.Is(err, ErrInvalidRoom) {
			t.Errorf("%q accepted", bad)
		}
	}
}

// FuzzValidateRoom checks the room rule against a plain reading of it.
func FuzzValidateRoom(f *testing.F) {
	for _, s := range []string{"lobby", "", "a b", "é", strings.Repeat("z", 64), strings.Repeat("z", 65), "a/b",
		".", "..", "...", strings.Repeat(".", 64), "a.", ".a", "..a", "a..", "\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		want := len(name) >= 1 && len(name) <= 64 &&
			strings.Trim(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") == "" &&
			strings.Trim(name, ".") != "" // not only dots
		if got := ValidateRoom(name) == nil; got != want {
			t.Fatalf("ValidateRoom(%q) accepted=%v, want %v", name, got, want)
		}
	})
}

func TestMemoryNeverNegative(t *testing.T) {
	m := NewMemory()
	if n := m.Leave("x", Member{}); n != (Counts{}) {
		t.Fatalf("leave of empty room gave %d", n)
	}
	m.Join("x", Member{})
	m.Leave("x", Member{})
	if n := m.Leave("x", Member{}); n != (Counts{}) {
		t.Fatalf("a second leave of a room's only stream gave %d", n)
	}
	if rooms, total := m.Rooms(10, nil); total != 0 || len(rooms) != 0 {
		t.Fatalf("an emptied room is still listed: %v, %d", rooms, total)
	}
}

// Rooms pages by name, and a room the caller may not see is neither listed
// nor counted.
func TestMemoryRoomsPagesAndHides(t *testing.T) {
	m := NewMemory()
	m.Join("b", Member{})
	m.Join("a", Member{})
	m.Join("a", Member{})
	rooms, total := m.Rooms(1, nil)
	if total != 2 || len(rooms) != 1 || rooms[0] != (RoomCount{"a", 2, 2}) {
		t.Fatalf("Rooms(1) = %v, %d", rooms, total)
	}
	rooms, total = m.Rooms(1, func(r string) bool { return r != "a" })
	if total != 1 || len(rooms) != 1 || rooms[0].Room != "b" {
		t.Fatalf("Rooms(1) without a = %v, %d", rooms, total)
	}
}

func TestLimitsAndClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, _ := newHub(t, HubOptions{MaxStreams: 3, MaxRooms: 2})
		a, _, _ := h.Join("a")
		b, _, _ := h.Join("b")
		if _, _, err := h.Join("c"); !errors.Is(err, ErrRoomLimit) {
			t.Fatalf("third room: %v", err)
		}
		c, _, _ := h.Join("a")
		if _, _, err := h.Join("a"); !errors.Is(err, ErrStreamLimit) {
			t.Fatalf("fourth stream: %v", err)
		}
		if _, _, err := h.Join("bad name"); !errors.Is(err, ErrInvalidRoom) {
			t.Fatalf("bad room: %v", err)
		}
		drained := h.Close()
		if _, _, err := h.Join("a"); !errors.Is(err, ErrClosed) {
			t.Fatalf("after close: %v", err)
		}
		a.Leave()
		b.Leave()
		select {
		case <-drained:
			t.Fatal("drained with a stream left")
		default:
		}
		c.Leave()
		<-drained
	})
}

// elsewhere is a Memory backend plus streams of other nodes, as a shared
// backend sees them.
type elsewhere struct {
	*Memory
	mu    sync.Mutex
	other map[string]int
}

func (e *elsewhere) add(room string, n int) {
	e.mu.Lock()
	e.other[room] += n
	e.mu.Unlock()
}

func (e *elsewhere) Join(room string, m Member) (Counts, error) {
	n, err := e.Memory.Join(room, m)
	return e.plus(room, n), err
}

func (e *elsewhere) Leave(room string, m Member) Counts { return e.plus(room, e.Memory.Leave(room, m)) }
func (e *elsewhere) Count(room string) Counts           { return e.plus(room, e.Memory.Count(room)) }

func (e *elsewhere) plus(room string, c Counts) Counts {
	e.mu.Lock()
	defer e.mu.Unlock()
	return Counts{People: c.People + e.other[room], Connections: c.Connections + e.other[room]}
}

// Another node's change reaches this node's streams through Changed, at once
// in a quiet room, and not at all in a room with no stream here.
func TestChangedElsewhereIsPublished(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := &elsewhere{Memory: NewMemory(), other: map[string]int{}}
		h, rec := newHubOn(t, e, HubOptions{})
		st, n, _ := h.Join("r")
		if n != 1 {
			t.Fatalf("join: %d", n)
		}
		time.Sleep(time.Second)
		synctest.Wait()
		before := len(rec.published())

		e.add("r", 4)
		h.Changed("r")
		h.Changed("r") // nothing new: no second publish
		e.add("elsewhere-only", 2)
		h.Changed("elsewhere-only")
		synctest.Wait()
		pubs := publishesSince(rec, before)
		if len(pubs) != 1 || pubs[0].room != "r" || pubs[0].count != 5 {
			t.Fatalf("published %v, want r at 5 once, at once", pubs)
		}
		st.Leave()
		<-h.Close()
	})
}

func publishesSince(rec *recorder, n int) []publish { return rec.published()[n:] }

// hubState is what the tests check of a hub's insides.
type hubState struct {
	sources map[string]int
	ghosts  int
	idle    int
}

// snapshot reads the hub's insides under its lock (timers run on their
// own goroutines).
func (h *Hub) snapshot() hubState {
	h.mu.Lock()
	defer h.mu.Unlock()
	return hubState{sources: maps.Clone(h.sources), ghosts: h.ghosts, idle: h.idle.Len()}
}
