package presence

import (
	"errors"
	"maps"
	"testing"
	"testing/synctest"
)

// The rooms one source's watches bring into existence stay within its
// share: past it a watch gets ErrWatchSourceLimit, while other sources
// still watch new rooms; rooms held already never count; a room's charge
// goes with its last watcher.
func TestWatchedRoomsPerSource(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, _ := newHub(t, HubOptions{MaxRooms: 20, MaxWatchRoomsPerSource: 3})
		watch := func(src string, rooms ...string) (*Watch, error) {
			t.Helper()
			w, _, err := h.Watch(rooms, WatchOptions{Source: src, Alone: true})
			return w, err
		}
		must := func(w *Watch, err error) *Watch {
			t.Helper()
			if err != nil {
				t.Fatal(err)
			}
			return w
		}
		charged := func(want map[string]int) {
			t.Helper()
			h.mu.Lock()
			defer h.mu.Unlock()
			if !maps.Equal(h.watchFrom, want) {
				t.Fatalf("charged %v, want %v", h.watchFrom, want)
			}
		}
		p, _, err := h.Join("p") // a room of people
		if err != nil {
			t.Fatal(err)
		}
		a1 := must(watch("a", "x1", "x2"))
		if _, err := watch("a", "x3", "x4"); !errors.Is(err, ErrWatchSourceLimit) {
			t.Fatalf("two more new rooms past the share: %v, want ErrWatchSourceLimit", err)
		}
		charged(map[string]int{"a": 2}) // the refused watch made nothing
		a2 := must(watch("a", "x3", "x1", "p"))
		if _, err := watch("a", "x4"); !errors.Is(err, ErrWatchSourceLimit) {
			t.Fatalf("a new room past the share: %v, want ErrWatchSourceLimit", err)
		}
		// Rooms that exist, watched or with people, never count.
		a3 := must(watch("a", "x1", "x2", "x3", "p"))
		// Another source is not affected, and watching the rooms a made
		// costs it nothing.
		b := must(watch("b", "y1", "y2", "y3", "x1"))
		anon := must(watch("", "z1", "z2", "z3", "z4")) // no source: no share
		charged(map[string]int{"a": 3, "b": 3})

		// x2 keeps its charge while a3 watches it; x1 while b does.
		a1.Close()
		charged(map[string]int{"a": 3, "b": 3})
		a3.Close()
		charged(map[string]int{"a": 2, "b": 3})
		a4 := must(watch("a", "x4"))
		// A person in a room a made does not release it; its last watcher
		// does, though the person keeps it.
		q, _, err := h.Join("x3")
		if err != nil {
			t.Fatal(err)
		}
		a2.Close()
		charged(map[string]int{"a": 2, "b": 3}) // x1 is b's to hold now, still a's charge
		b.Close()
		charged(map[string]int{"a": 1})
		a4.Close()
		charged(map[string]int{})
		for _, c := range []func(){anon.Close, q.Leave, p.Leave} {
			c()
		}
		if s := h.Stats(); s != (Stats{}) {
			t.Fatalf("at the end: %+v", s)
		}
		<-h.Close()
	})
}
