package presence

import (
	"errors"
	"strconv"
	"testing"
	"testing/synctest"
	"time"
)

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
