package presence

import (
	"errors"
	"maps"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// recorder is a Notifier that remembers what it was told.
type recorder struct {
	mu        sync.Mutex
	opened    []string
	closed    []string
	pubs      []publish
	onPublish func(seq uint64) // if set, called on every publish
}

type publish struct {
	room  string
	count int
	at    time.Time
	u     Update
}

func (r *recorder) RoomOpened(room string) Publisher {
	r.mu.Lock()
	r.opened = append(r.opened, room)
	r.mu.Unlock()
	return roomRecorder{r, room}
}

func (r *recorder) RoomClosed(room string, _ Publisher) {
	r.mu.Lock()
	r.closed = append(r.closed, room)
	r.mu.Unlock()
}

// roomRecorder is the Publisher a recorder hands out for one room.
type roomRecorder struct {
	r    *recorder
	room string
}

func (rr roomRecorder) Publish(u Update) {
	r := rr.r
	seq := u.Seq
	r.mu.Lock()
	r.pubs = append(r.pubs, publish{rr.room, u.Counts.People, time.Now(), u})
	hook := r.onPublish
	r.mu.Unlock()
	if hook != nil {
		hook(seq)
	}
}

func (r *recorder) published() []publish {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]publish(nil), r.pubs...)
}

func newHub(t *testing.T, opts HubOptions) (*Hub, *recorder) {
	t.Helper()
	return newHubOn(t, NewMemory(), opts)
}

func newHubOn(t *testing.T, b Backend, opts HubOptions) (*Hub, *recorder) {
	t.Helper()
	rec := &recorder{}
	h, err := NewHub(b, rec, opts)
	if err != nil {
		t.Fatal(err)
	}
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

func TestMemoryNeverNegative(t *testing.T) {
	m := NewMemory()
	if n := m.Leave("x", Member{}); n != (Counts{}) {
		t.Fatalf("leave of empty room gave %d", n)
	}
	m.Join("b", Member{})
	m.Join("a", Member{})
	m.Join("a", Member{})
	rooms, total := m.Rooms(1, nil)
	if total != 2 || len(rooms) != 1 || rooms[0] != (RoomCount{"a", 2, 2}) {
		t.Fatalf("Rooms(1) = %v, %d", rooms, total)
	}
	// A room the caller may not see is neither listed nor counted.
	rooms, total = m.Rooms(1, func(r string) bool { return r != "a" })
	if total != 1 || len(rooms) != 1 || rooms[0].Room != "b" {
		t.Fatalf("Rooms(1) without a = %v, %d", rooms, total)
	}
}

func TestQuietRoomPublishesAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, rec := newHub(t, HubOptions{Window: 100 * time.Millisecond})
		start := time.Now()
		s, n, err := h.Join("r")
		if err != nil || n != 1 {
			t.Fatalf("join: %d %v", n, err)
		}
		synctest.Wait()
		if p := rec.published(); len(p) != 1 || p[0].count != 1 || p[0].at != start {
			t.Fatalf("publishes %v, want one of 1 at once", p)
		}
		s.Leave()
		s.Leave() // twice is harmless
		synctest.Wait()
		if h.Stats() != (Stats{}) || len(rec.closed) != 1 {
			t.Fatalf("after leave: %+v, closed %v", h.Stats(), rec.closed)
		}
	})
}

func TestBurstIsCoalesced(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const window = 100 * time.Millisecond
		h, rec := newHub(t, HubOptions{Window: window})
		var streams []*Stream
		for i := range 50 {
			s, _, err := h.Join("r")
			if err != nil {
				t.Fatal(err)
			}
			streams = append(streams, s)
			if i%5 == 0 {
				time.Sleep(7 * time.Millisecond)
			}
		}
		time.Sleep(time.Second)
		p := rec.published()
		for i := 1; i < len(p); i++ {
			if gap := p[i].at.Sub(p[i-1].at); gap < window {
				t.Fatalf("publishes %v and %v only %s apart", p[i-1], p[i], gap)
			}
		}
		if last := p[len(p)-1].count; last != 50 {
			t.Fatalf("last published %d, want 50", last)
		}
		for _, s := range streams {
			s.Leave()
		}
	})
}

func TestBusyRoomWaitsToSettle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const window = 100 * time.Millisecond
		const fanout = 110 * time.Millisecond // each publish takes this long to reach the last stream
		h, rec := newHub(t, HubOptions{Window: window})
		a, _, _ := h.Join("r")
		rec.mu.Lock()
		rec.onPublish = func(seq uint64) { time.AfterFunc(fanout, func() { a.Delivered(seq) }) }
		rec.mu.Unlock()
		synctest.Wait()

		// A ramp: a join every 10ms for three seconds.
		start := time.Now()
		var ramp []*Stream
		for time.Since(start) < 3*time.Second {
			time.Sleep(10 * time.Millisecond)
			s, _, _ := h.Join("r")
			ramp = append(ramp, s)
		}
		lastChange := time.Now()
		time.Sleep(2 * time.Second)

		p := rec.published()
		// At once (a quiet room), then a window apart until the first
		// fan-out's duration is known, then every 8 fan-outs while busy.
		for i := 1; i < len(p); i++ {
			if gap := p[i].at.Sub(p[i-1].at); gap < window {
				t.Fatalf("publishes %d and %d only %s apart: %v", i-1, i, gap, p)
			}
		}
		if len(p) < 6 || len(p) > 8 {
			t.Fatalf("%d publishes for a 3s ramp, want 6 to 8: %v", len(p), p)
		}
		for i := len(p) - 3; i < len(p)-1; i++ {
			if gap := p[i].at.Sub(p[i-1].at); gap != 8*fanout {
				t.Fatalf("gap %d in a busy room %s, want 8 fan-outs (%s): %v", i, gap, 8*fanout, p)
			}
		}
		// Once the changes stop, the count goes out after half a window.
		last := p[len(p)-1]
		if last.at != lastChange.Add(window/2) || last.count != h.Count("r") {
			t.Fatalf("last publish %v, want the count %d at %s", last, h.Count("r"), lastChange.Add(window/2))
		}

		// Quiet again: a single change goes out at once.
		c, _, _ := h.Join("r")
		synctest.Wait()
		if p := rec.published(); p[len(p)-1].at != time.Now() {
			t.Fatalf("quiet room publish at %v, want now", p[len(p)-1])
		}
		// A single change soon after: one window after that publish, not
		// held back by the long busy window of a room with slow fan-outs.
		time.Sleep(20 * time.Millisecond)
		d, _, _ := h.Join("r")
		time.Sleep(time.Second)
		if p := rec.published(); p[len(p)-1].at.Sub(p[len(p)-2].at) != window {
			t.Fatalf("single change after a publish: %v, want a window later", p[len(p)-2:])
		}
		for _, s := range append(ramp, a, c, d) {
			s.Leave()
		}
	})
}

func TestSubscribedRepublishesOnlyWhenMissed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, rec := newHub(t, HubOptions{})
		a, _, _ := h.Join("r")
		time.Sleep(time.Second)
		a.Subscribed() // nothing changed since a's first count
		time.Sleep(time.Second)
		if n := len(rec.published()); n != 1 {
			t.Fatalf("%d publishes, want 1", n)
		}
		b, _, _ := h.Join("r")
		time.Sleep(time.Second)
		a.Subscribed() // as if a had been registered only now: it saw 1, the count is 2
		time.Sleep(time.Second)
		p := rec.published()
		if len(p) != 3 || p[2].count != 2 {
			t.Fatalf("publishes %v, want a forced third one of 2", p)
		}
		a.Leave()
		b.Leave()
	})
}

// A change while a fan-out is still running may be the first of many (half
// a room dropping): it waits for the fan-out to finish and changes to pause.
func TestChangeDuringFanOutWaitsForIt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const window = 100 * time.Millisecond
		h, rec := newHub(t, HubOptions{Window: window})
		a, _, _ := h.Join("r")
		b, _, _ := h.Join("r")
		rec.mu.Lock()
		rec.onPublish = func(seq uint64) {
			go func() { // a fan-out whose deliveries run for 300ms
				for range 300 {
					time.Sleep(time.Millisecond)
					a.Delivered(seq)
				}
			}()
		}
		rec.mu.Unlock()
		time.Sleep(time.Second)
		start := time.Now()
		c, _, _ := h.Join("r") // published at once
		time.Sleep(20 * time.Millisecond)
		b.Leave() // during that fan-out
		time.Sleep(2 * time.Second)
		p := rec.published()
		last := p[len(p)-1]
		// Not at the window (+100ms) but once the fan-out ended (+300ms) and
		// the room settled (half a window later).
		if took := last.at.Sub(start); took < 290*time.Millisecond || took > 300*time.Millisecond+window/2 || last.count != 2 {
			t.Fatalf("publish after a change during a fan-out: %v at +%s, want 2 between +290ms and +350ms", last, took)
		}
		a.Leave()
		c.Leave()
	})
}

// A newcomer is sent a count that no publish carried; if the count returns
// to the published value before the next publish, it must still be told.
func TestNewcomerIsCorrectedWhenTheCountReturns(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, rec := newHub(t, HubOptions{Window: 100 * time.Millisecond})
		a, _, _ := h.Join("r")
		time.Sleep(time.Second)
		b, _, _ := h.Join("r") // published at once: 2
		synctest.Wait()
		c, first, _ := h.Join("r") // within the window: c is sent 3
		c.Subscribed()
		b.Leave() // back to 2 before the next publish
		time.Sleep(time.Second)
		p := rec.published()
		if first != 3 || p[len(p)-1].count != 2 || p[len(p)-1].u.Seq == p[1].u.Seq {
			t.Fatalf("newcomer got %d, publishes %v: want a new publish of 2", first, p)
		}
		a.Leave()
		c.Leave()
	})
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

// A person's closed stream counts on for the grace: a stream of the same
// person within it takes its place and nothing is published; without one,
// the leave is published when the grace ends, not before. Anonymous streams
// leave at once.
func TestGrace(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const grace = 3 * time.Second
		h, rec := newHub(t, HubOptions{Grace: grace})
		obs, _, _ := h.Join("r")
		v := Member{ID: "v:1"}
		tab, j, _ := h.JoinAs("r", v, JoinOptions{})
		if j.Counts != (Counts{People: 2, Connections: 2}) {
			t.Fatalf("join: %+v", j.Counts)
		}
		time.Sleep(grace) // there long enough to earn the grace
		synctest.Wait()
		n := len(rec.published())

		// A refresh: close and reopen within the grace.
		tab.Leave()
		time.Sleep(500 * time.Millisecond)
		tab2, j, _ := h.JoinAs("r", v, JoinOptions{})
		if j.Counts.People != 2 {
			t.Errorf("after the refresh: %+v", j.Counts)
		}
		time.Sleep(2 * grace) // and the new tab earns its own
		synctest.Wait()
		if p := publishesSince(rec, n); len(p) != 0 {
			t.Errorf("a refresh within the grace published %v", p)
		}

		// The last tab closes: one leave, after the grace and not before.
		tab2.Leave()
		time.Sleep(grace - time.Millisecond)
		synctest.Wait()
		if p := publishesSince(rec, n); len(p) != 0 {
			t.Errorf("published before the grace ended: %v", p)
		}
		time.Sleep(time.Millisecond)
		synctest.Wait()
		if p := publishesSince(rec, n); len(p) != 1 || p[0].u.Counts != (Counts{People: 1, Connections: 1}) {
			t.Errorf("after the grace: %v, want one publish of 1 person", p)
		}

		// Anonymous: at once.
		a, _, _ := h.Join("r")
		time.Sleep(time.Second)
		synctest.Wait()
		n = len(rec.published())
		a.Leave()
		synctest.Wait()
		if p := publishesSince(rec, n); len(p) != 1 || p[0].count != 1 {
			t.Errorf("an anonymous leave published %v, want 1 at once", p)
		}
		obs.Leave()
		<-h.Close()
	})
}

// Three tabs of one person are one person and three connections.
func TestTabsOfOnePerson(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, _ := newHub(t, HubOptions{Grace: time.Second})
		v := Member{ID: "v:x"}
		var tabs []*Stream
		var last Joined
		for range 3 {
			st, j, _ := h.JoinAs("r", v, JoinOptions{})
			tabs = append(tabs, st)
			last = j
		}
		if last.Counts != (Counts{People: 1, Connections: 3}) {
			t.Errorf("three tabs: %+v", last.Counts)
		}
		for _, st := range tabs {
			st.Leave()
		}
		<-h.Close() // ends the grace of the closed tabs
		if c := h.backend.Count("r"); c != (Counts{}) {
			t.Errorf("after close: %+v", c)
		}
	})
}

// A stream that follows members gets them on join, then who joined and
// left, coalesced: someone who comes and goes within one window is never
// mentioned.
func TestMemberEvents(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, rec := newHub(t, HubOptions{MembersCap: 2})
		alice := Member{ID: "u:alice", Name: "Alice", Signed: true}
		a, _, _ := h.JoinAs("r", alice, JoinOptions{})
		anon, _, _ := h.Join("r")
		w, j, _ := h.JoinAs("r", Member{ID: "u:wat", Name: "W", Signed: true}, JoinOptions{Members: true})
		if len(j.Members) != 2 || j.Members[0] != (MemberInfo{"u:alice", "Alice"}) || j.Members[1].ID != "u:wat" {
			t.Errorf("members on join: %+v, want alice and the watcher", j.Members)
		}
		time.Sleep(time.Second)
		synctest.Wait()
		p := rec.published()
		last := p[len(p)-1].u
		if !last.Tracked || len(last.Joined)+len(last.Left) != 0 || len(last.Members) != 2 || last.Seq != j.Seq+1 {
			t.Fatalf("publish after the watcher joined: %+v", last)
		}
		n := len(p)

		// Bob joins and Carol comes and goes within one window.
		bob, _, _ := h.JoinAs("r", Member{ID: "u:bob", Name: "Bob", Signed: true}, JoinOptions{})
		synctest.Wait() // published at once: quiet room
		carol, _, _ := h.JoinAs("r", Member{ID: "u:carol", Signed: true}, JoinOptions{})
		carol.Leave()
		time.Sleep(time.Second)
		synctest.Wait()
		p = publishesSince(rec, n)
		var joined, left []string
		for _, x := range p {
			for _, m := range x.u.Joined {
				joined = append(joined, m.ID)
			}
			for _, m := range x.u.Left {
				left = append(left, m.ID)
			}
		}
		if strings.Join(joined, ",") != "u:bob" || len(left) != 0 {
			t.Errorf("joined %v, left %v; want bob joined, nothing about carol", joined, left)
		}
		if l := p[len(p)-1].u; len(l.Members) != 2 || !l.Truncated {
			t.Errorf("members capped at 2: %+v", l)
		}
		n = len(rec.published())
		bob.Leave()
		synctest.Wait()
		p = publishesSince(rec, n)
		if len(p) != 1 || len(p[0].u.Left) != 1 || p[0].u.Left[0] != (MemberInfo{"u:bob", "Bob"}) {
			t.Errorf("bob leaving: %+v", p)
		}
		for _, s := range []*Stream{a, anon, w} {
			s.Leave()
		}
		<-h.Close()
	})
}

// A stream earns the grace by being there at least the grace: one closed
// sooner leaves at once, so that opening and closing streams cheaply with
// made-up ids makes no phantom people. One that lived the grace keeps it.
func TestGraceIsEarned(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const grace = 3 * time.Second
		h, _ := newHub(t, HubOptions{Grace: grace})
		for i := range 3000 {
			st, _, err := h.JoinAs("r", Member{ID: "v:" + strconv.Itoa(i)}, JoinOptions{})
			if err != nil {
				t.Fatal(err)
			}
			st.Leave()
		}
		if c := h.backend.Count("r"); c != (Counts{}) {
			t.Fatalf("3000 streams opened and closed at once leave %+v, want nobody", c)
		}
		if s := h.Stats(); s.Rooms != 0 || h.snapshot().ghosts != 0 {
			t.Fatalf("left behind %+v and %d ghosts", s, h.snapshot().ghosts)
		}

		// Just short of the grace: still no grace.
		st, _, _ := h.JoinAs("r", Member{ID: "v:a"}, JoinOptions{})
		time.Sleep(grace - time.Millisecond)
		st.Leave()
		if c := h.backend.Count("r"); c.People != 0 {
			t.Fatalf("a stream closed before its grace was earned still counts: %+v", c)
		}

		// A grace, and it is earned; a stream that takes its place
		// earns its own anew.
		st, _, _ = h.JoinAs("r", Member{ID: "v:a"}, JoinOptions{})
		time.Sleep(grace)
		st.Leave()
		if c := h.backend.Count("r"); c.People != 1 {
			t.Fatalf("a person who was there the grace left at once: %+v", c)
		}
		st, j, _ := h.JoinAs("r", Member{ID: "v:a"}, JoinOptions{})
		if j.Counts.People != 1 {
			t.Fatalf("refresh: %+v", j.Counts)
		}
		st.Leave()
		if c := h.backend.Count("r"); c.People != 0 {
			t.Fatalf("a takeover closed at once kept its grace: %+v", c)
		}
		<-h.Close()
	})
}

// With MaxPerSource, a source's open streams plus its streams in their
// grace stay within the bound; other sources are not affected; a person
// coming back from the same source takes their own place; the map of
// sources empties.
func TestMaxPerSource(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const grace = time.Second
		h, _ := newHub(t, HubOptions{Grace: grace, MaxPerSource: 3})
		a := JoinOptions{Source: "10.0.0.1"}
		var open []*Stream
		for i := range 3 {
			st, _, err := h.JoinAs("r"+strconv.Itoa(i), Member{ID: "v:" + strconv.Itoa(i)}, a)
			if err != nil {
				t.Fatalf("stream %d: %v", i, err)
			}
			open = append(open, st)
		}
		if _, _, err := h.JoinAs("r", Member{}, a); !errors.Is(err, ErrSourceLimit) {
			t.Fatalf("fourth stream of the source: %v", err)
		}
		other, _, err := h.JoinAs("r", Member{}, JoinOptions{Source: "10.0.0.2"})
		if err != nil {
			t.Fatalf("another source: %v", err)
		}
		time.Sleep(grace)
		open[0].Leave() // in its grace: still counts against the source
		if _, _, err := h.JoinAs("r", Member{ID: "v:new"}, a); !errors.Is(err, ErrSourceLimit) {
			t.Fatalf("a stream in its grace did not count: %v", err)
		}
		// ...but the person themself comes back.
		back, j, err := h.JoinAs("r0", Member{ID: "v:0"}, a)
		if err != nil || j.Counts.People != 1 {
			t.Fatalf("a refresh was refused: %v %+v", err, j.Counts)
		}
		if _, _, err := h.JoinAs("r0", Member{ID: "v:0"}, a); !errors.Is(err, ErrSourceLimit) {
			t.Fatalf("a second tab beyond the bound: %v", err)
		}
		back.Leave() // lived < grace: leaves at once, and frees its place
		if h.snapshot().sources["10.0.0.1"] != 2 {
			t.Fatalf("after the short stream left: %v", h.snapshot().sources)
		}
		for _, st := range append(open[1:], other) {
			st.Leave() // open[1:] into their grace, other (anonymous) at once
		}
		if h.snapshot().sources["10.0.0.1"] != 2 || len(h.snapshot().sources) != 1 {
			t.Fatalf("ghosts are not counted: %v", h.snapshot().sources)
		}
		time.Sleep(grace)
		synctest.Wait()
		if n := len(h.snapshot().sources); n != 0 || h.snapshot().ghosts != 0 {
			t.Fatalf("after the grace: sources %v, %d ghosts", h.snapshot().sources, h.snapshot().ghosts)
		}
		<-h.Close()
	})
}

// Rooms that hold only people in their grace give way, oldest first, to a
// new room when MaxRooms is reached; a room with a stream open never does.
func TestGhostRoomsGiveWay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const grace = time.Minute
		h, _ := newHub(t, HubOptions{Grace: grace, MaxRooms: 200})
		var sts []*Stream
		for i := range 200 {
			st, _, err := h.JoinAs("g"+strconv.Itoa(i), Member{ID: "v:" + strconv.Itoa(i)}, JoinOptions{})
			if err != nil {
				t.Fatal(err)
			}
			sts = append(sts, st)
		}
		if _, _, err := h.Join("new"); !errors.Is(err, ErrRoomLimit) {
			t.Fatalf("201st room with 200 rooms of open streams: %v", err)
		}
		time.Sleep(grace) // all earn their grace
		for _, st := range sts[1:] {
			st.Leave()
		}
		if s := h.Stats(); s.Rooms != 200 || h.snapshot().ghosts != 199 {
			t.Fatalf("%+v, %d ghosts, want 200 rooms and 199 ghosts", s, h.snapshot().ghosts)
		}
		for i := range 300 {
			st, _, err := h.Join("new" + strconv.Itoa(i))
			if err != nil {
				t.Fatalf("new room %d after a storm of closed streams: %v", i, err)
			}
			defer st.Leave()
			if i == 0 {
				if c := h.backend.Count("g1"); c != (Counts{}) {
					t.Errorf("the oldest ghost room g1 did not give way: %+v", c)
				}
				if c := h.backend.Count("g2"); c.People != 1 {
					t.Errorf("the next ghost room g2 gave way too: %+v", c)
				}
			}
			if i == 198 {
				if _, _, err := h.Join("one-too-many"); !errors.Is(err, ErrRoomLimit) {
					t.Fatalf("with every room holding an open stream: %v", err)
				}
				break
			}
		}
		if c := h.backend.Count("g0"); c.People != 1 {
			t.Errorf("the room with an open stream gave way: %+v", c)
		}
		if h.snapshot().idle != 0 || h.snapshot().ghosts != 0 {
			t.Errorf("%d idle rooms, %d ghosts left", h.snapshot().idle, h.snapshot().ghosts)
		}
		sts[0].Leave()
	})
}

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
