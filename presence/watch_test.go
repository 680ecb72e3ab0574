package presence

import (
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"testing"
	"testing/synctest"
	"time"
)

// drained is what one Drain of w hands out, if w was woken; nil if not.
func drained(t *testing.T, w *Watch) []WatchEvent {
	t.Helper()
	select {
	case <-w.Wake():
	default:
		return nil
	}
	var evs []WatchEvent
	w.Drain(func(ev WatchEvent) { evs = append(evs, ev) })
	return evs
}

// people decodes a presence data's room and people.
func people(t *testing.T, data []byte) (string, int) {
	t.Helper()
	var p struct {
		Room   string
		People int
	}
	if err := json.Unmarshal(data, &p); err != nil {
		t.Fatalf("%s: %v", data, err)
	}
	return p.Room, p.People
}

// A watcher gets each room's counts at once, then a room's changes,
// coalesced, and is never counted itself; when it goes, the rooms only it
// held go too.
func TestWatchFollowsCounts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, _ := newHub(t, HubOptions{Window: 100 * time.Millisecond})
		in, _, _ := h.Join("a")
		w, first, err := h.Watch([]string{"a", "b"}, WatchOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if string(first[0]) != `{"room":"a","people":1,"connections":1}` || string(first[1]) != `{"room":"b","people":0,"connections":0}` {
			t.Fatalf("first: %s %s", first[0], first[1])
		}
		if h.Count("a") != 1 || h.Count("b") != 0 {
			t.Fatalf("the watcher was counted: a %d, b %d", h.Count("a"), h.Count("b"))
		}
		time.Sleep(time.Second)
		synctest.Wait()
		drained(t, w) // the publish of a's join, which first already said

		var more []*Stream
		join := func() {
			st, _, _ := h.Join("a")
			more = append(more, st)
		}
		join()
		synctest.Wait()
		evs := drained(t, w)
		if len(evs) != 1 {
			t.Fatalf("at once: %d events, want 1", len(evs))
		}
		if room, n := people(t, evs[0].Presence); room != "a" || n != 2 {
			t.Fatalf("at once: %s", evs[0].Presence)
		}
		for range 4 {
			time.Sleep(10 * time.Millisecond)
			join()
		}
		synctest.Wait()
		if evs := drained(t, w); evs != nil {
			t.Fatalf("within the window: %d events", len(evs))
		}
		time.Sleep(time.Second)
		synctest.Wait()
		evs = drained(t, w)
		if len(evs) != 1 {
			t.Fatalf("after the window: %d events, want the burst in one", len(evs))
		}
		if room, n := people(t, evs[0].Presence); room != "a" || n != 6 {
			t.Fatalf("after the window: %s", evs[0].Presence)
		}
		h.Heartbeat()
		if evs := drained(t, w); evs != nil {
			t.Fatalf("a heartbeat woke a watcher in a room: %v", evs)
		}

		w.Close()
		w.Close() // twice is harmless
		in.Leave()
		for _, st := range more {
			st.Leave()
		}
		synctest.Wait()
		if s := h.Stats(); s != (Stats{}) {
			t.Fatalf("after all left: %+v", s)
		}
	})
}

// A watcher that may see a room's members gets the list first, whole, then
// who joins, tagged with the room; one that may not gets counts only.
func TestWatchMembers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, _ := newHub(t, HubOptions{})
		may := func(room string) bool { return room == "m" }
		w, first, err := h.Watch([]string{"m", "n"}, WatchOptions{Members: may})
		if err != nil {
			t.Fatal(err)
		}
		if string(first[0]) != `{"room":"m","people":0,"connections":0,"members":[],"truncated":false}` || string(first[1]) != `{"room":"n","people":0,"connections":0}` {
			t.Fatalf("first: %s %s", first[0], first[1])
		}
		time.Sleep(time.Second)
		synctest.Wait()
		// The first publish that tracks the members is taken whole, as a
		// room's own stream takes it.
		evs := drained(t, w)
		if len(evs) != 1 || string(evs[0].Presence) != string(first[0]) {
			t.Fatalf("first publish: %+v", evs)
		}

		ann, _, _ := h.JoinAs("m", Member{ID: "u:ann", Name: "Ann", Signed: true}, JoinOptions{})
		synctest.Wait()
		evs = drained(t, w)
		if len(evs) != 1 || len(evs[0].Joined) != 1 || string(evs[0].Joined[0]) != `{"room":"m","id":"ann","name":"Ann"}` {
			t.Fatalf("ann's join: %+v", evs)
		}
		time.Sleep(time.Second)
		bo, _, _ := h.JoinAs("m", Member{ID: "u:bo", Signed: true}, JoinOptions{})
		nn, _, _ := h.JoinAs("n", Member{ID: "u:nn", Signed: true}, JoinOptions{})
		synctest.Wait()
		evs = drained(t, w)
		if len(evs) != 2 {
			t.Fatalf("second publishes: %d events, want m's and n's", len(evs))
		}
		for _, ev := range evs {
			switch room, _ := people(t, ev.Presence); room {
			case "m":
				if len(ev.Joined) != 1 || string(ev.Joined[0]) != `{"room":"m","id":"bo"}` || len(ev.Left) != 0 {
					t.Errorf("m's delta: %s %q %q", ev.Presence, ev.Joined, ev.Left)
				}
			case "n":
				if ev.Joined != nil || string(ev.Presence) != `{"room":"n","people":1,"connections":1}` {
					t.Errorf("n, whose members the watcher may not see: %s %q", ev.Presence, ev.Joined)
				}
			}
		}
		w.Close()
		for _, st := range []*Stream{ann, bo, nn} {
			st.Leave()
		}
		<-h.Close()
	})
}

// Rooms that only watchers hold are bounded apart from the rooms of people:
// watching many rooms never keeps people out, and a watch that would hold
// more such rooms than MaxRooms is refused until watchers go.
func TestWatchedRoomsAreBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, _ := newHub(t, HubOptions{MaxRooms: 2})
		w, _, err := h.Watch([]string{"x", "y"}, WatchOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := h.Watch([]string{"z"}, WatchOptions{}); !errors.Is(err, ErrRoomLimit) {
			t.Fatalf("a third watched-only room: %v, want ErrRoomLimit", err)
		}
		p, _, err1 := h.Join("p")
		q, _, err2 := h.Join("q")
		if err1 != nil || err2 != nil {
			t.Fatalf("people kept out by watched rooms: %v %v", err1, err2)
		}
		if _, _, err := h.Join("r"); !errors.Is(err, ErrRoomLimit) {
			t.Fatalf("a third room of people: %v", err)
		}
		// A watcher of a room people hold adds no watched-only room.
		wp, _, err := h.Watch([]string{"p"}, WatchOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if s := h.Stats(); s.Rooms != 4 || s.Watched != 2 {
			t.Fatalf("stats %+v", s)
		}
		w.Close()
		if s := h.Stats(); s.Rooms != 2 || s.Watched != 0 {
			t.Fatalf("after the watcher left: %+v", s)
		}
		w2, _, err := h.Watch([]string{"z", "zz"}, WatchOptions{})
		if err != nil {
			t.Fatalf("after the watcher left: %v", err)
		}
		p.Leave() // p stays, held by its watcher only: counted as such
		if s := h.Stats(); s.Rooms != 4 || s.Watched != 3 {
			t.Fatalf("after p's people left: %+v", s)
		}
		for _, c := range []func(){wp.Close, w2.Close, q.Leave} {
			c()
		}
		if s := h.Stats(); s != (Stats{}) {
			t.Fatalf("at the end: %+v", s)
		}
		<-h.Close()
	})
}

// A room no stream of this node is in is followed through Changed, from
// the backend's own view (no extra reads of a shared store).
func TestWatchSeesOtherNodes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := &elsewhere{Memory: NewMemory(), other: map[string]int{"far": 2}}
		h, _ := newHubOn(t, e, HubOptions{})
		w, first, err := h.Watch([]string{"far"}, WatchOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if _, n := people(t, first[0]); n != 2 {
			t.Fatalf("first: %s", first[0])
		}
		time.Sleep(time.Second)
		synctest.Wait()
		drained(t, w)
		e.add("far", 3)
		h.Changed("far")
		synctest.Wait()
		evs := drained(t, w)
		if len(evs) != 1 {
			t.Fatalf("%d events", len(evs))
		}
		if _, n := people(t, evs[0].Presence); n != 5 {
			t.Fatalf("after the change: %s", evs[0].Presence)
		}
		w.Close()
		<-h.Close()
	})
}

// A watch of its own is an open stream: bounded as one, woken by
// heartbeats, and waited for by Close.
func TestAloneWatchIsAStream(t *testing.T) {
	h, _ := newHub(t, HubOptions{MaxStreams: 1})
	w, _, err := h.Watch([]string{"a"}, WatchOptions{Alone: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := h.Join("b"); !errors.Is(err, ErrStreamLimit) {
		t.Fatalf("join beside a watch at MaxStreams 1: %v", err)
	}
	h.Heartbeat()
	if evs := drained(t, w); evs != nil || w.Heartbeats() != 1 {
		t.Fatalf("heartbeat: %v, %d", evs, w.Heartbeats())
	}
	if _, _, err := h.Watch([]string{"b", "b"}, WatchOptions{}); !errors.Is(err, ErrInvalidRoom) {
		t.Fatalf("a repeated room: %v", err)
	}
	done := h.Close()
	select {
	case <-done:
		t.Fatal("drained with a watch open")
	default:
	}
	w.Close()
	<-done
}

// A followed room costs a watcher a small, fixed amount: far below the
// 1 KiB per followed room that the issue allows (a stream costs ~27 KiB).
// A room only watchers hold is a room with no one in it (about 2 KiB), at
// most MaxRooms of them.
func TestWatchMemoryPerFollowedRoom(t *testing.T) {
	const rooms, watchers, each = 1000, 200, 100
	h, _ := newHub(t, HubOptions{MaxRooms: rooms})
	all := make([]string, rooms)
	for i := range all {
		all[i] = fmt.Sprintf("room-%d", i)
	}
	var empty, before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&empty)
	holder, _, err := h.Watch(all, WatchOptions{}) // the rooms exist before the watchers come
	if err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	runtime.ReadMemStats(&before)
	perRoom := float64(before.HeapAlloc-empty.HeapAlloc) / rooms
	t.Logf("%.0f bytes per room that only a watcher holds", perRoom)
	if perRoom > 4096 {
		t.Errorf("%.0f bytes per room that only a watcher holds, want at most 4 KiB", perRoom)
	}
	ws := make([]*Watch, watchers)
	for i := range ws {
		start := i * 7 % (rooms - each)
		if ws[i], _, err = h.Watch(all[start:start+each], WatchOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	per := float64(after.HeapAlloc-before.HeapAlloc) / (watchers * each)
	t.Logf("%.0f bytes per followed room", per)
	if per > 1024 {
		t.Errorf("%.0f bytes per followed room, want at most 1024", per)
	}
	for _, w := range ws {
		w.Close()
	}
	holder.Close()
	if s := h.Stats(); s != (Stats{}) {
		t.Fatalf("after: %+v", s)
	}
}
