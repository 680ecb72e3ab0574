package main

import (
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestFollowSetsBalanced(t *testing.T) {
	const rooms, follow = 1000, 50
	for _, watchers := range []int{20, 500, 2000} {
		sets := followSets(watchers, rooms, follow, 11)
		if len(sets) != watchers {
			t.Fatalf("%d watchers: %d sets", watchers, len(sets))
		}
		per := make([]int, rooms)
		for w, set := range sets {
			if len(set) != follow {
				t.Fatalf("watcher %d follows %d rooms, want %d", w, len(set), follow)
			}
			seen := map[int32]bool{}
			for _, r := range set {
				if r < 0 || r >= rooms || seen[r] {
					t.Fatalf("watcher %d: room %d out of range or repeated in %v", w, r, set)
				}
				seen[r] = true
				per[r]++
			}
		}
		want := watchers * follow / rooms
		for r, n := range per {
			if n != want {
				t.Fatalf("%d watchers: room %d has %d watchers, want %d each", watchers, r, n, want)
			}
		}
	}
}

func TestFollowSetsDifferAndRepeat(t *testing.T) {
	a := followSets(40, 1000, 50, 11)
	b := followSets(40, 1000, 50, 11)
	if !equalSets(a, b) {
		t.Fatal("the same seed dealt different rooms")
	}
	if equalSets(a[:1], a[20:21]) {
		t.Fatal("the first watchers of two laps follow the same rooms")
	}
	if equalSets(a, followSets(40, 1000, 50, 12)) {
		t.Fatal("another seed dealt the same rooms")
	}
}

func equalSets(a, b [][]int32) bool {
	for i := range a {
		for j := range a[i] {
			if a[i][j] != b[i][j] {
				return false
			}
		}
	}
	return true
}

func TestRoomNames(t *testing.T) {
	for _, r := range []int{0, 7, 999} {
		got, ok := roomIndex(roomName(r, 1000))
		if !ok || got != r {
			t.Fatalf("roomIndex(roomName(%d)) = %d, %v", r, got, ok)
		}
	}
	if roomName(1000, 1000) != "ref" {
		t.Fatalf("the reference room is %q", roomName(1000, 1000))
	}
	for _, bad := range []string{"ref", "room-", "room-x", "room-01", "room--1", "rooms-1", ""} {
		if _, ok := roomIndex(bad); ok {
			t.Fatalf("roomIndex(%q) accepted", bad)
		}
	}
	if got := watchPath([]int32{3, 0, 42}, 1000); got != "/watch?rooms=room-3,room-0,room-42" {
		t.Fatalf("watchPath = %q", got)
	}
}

func TestParsePresence(t *testing.T) {
	room, people, err := parsePresence([]byte(`{"room":"room-5","people":2,"connections":3}`))
	if err != nil || room != "room-5" || people != 2 {
		t.Fatalf("got %q %d %v", room, people, err)
	}
	// Members and other fields of a signed-in stream are ignored.
	room, people, err = parsePresence([]byte(`{"room":"a","people":0,"connections":0,"members":[]}`))
	if err != nil || room != "a" || people != 0 {
		t.Fatalf("got %q %d %v", room, people, err)
	}
	for _, bad := range []string{`{"room":"a"}`, `{"people":1}`, `3`, `{"room":"a","people":"x"}`, ``} {
		if _, _, err := parsePresence([]byte(bad)); err == nil {
			t.Fatalf("parsePresence(%q) accepted", bad)
		}
	}
}

// TestWatcherHook feeds a /watch stream's bytes, split anywhere, through the
// parser with a watcher's hook.
func TestWatcherHook(t *testing.T) {
	body := "retry: 2000\n\n: hb\n\nevent: presence\ndata: {\"room\":\"room-3\",\"people\":2,\"connections\":3}\n\n" +
		"id: 9\nevent: presence\r\ndata: {\"room\":\"room-0\",\"people\":0,\"connections\":0}\r\n\r\n" +
		"event: presence\ndata: {\"room\":\"room-3\",\"people\":4,\"connections\":4}\n\n"
	for split := 1; split < len(body); split += 7 {
		w := newWatcher([]int32{3, 0})
		var delivered atomic.Int64
		clock := int64(0)
		p := &eventParser{hook: w.hook(func() int64 { clock++; return clock }, &delivered, 1000)}
		gotAny := false
		for _, part := range []string{body[:split], body[split:]} {
			_, got, err := p.feed([]byte(part))
			if err != nil {
				t.Fatalf("split %d: %v", split, err)
			}
			gotAny = gotAny || got
		}
		if !gotAny || delivered.Load() != 3 || w.people[0].Load() != 4 || w.people[1].Load() != 0 {
			t.Fatalf("split %d: got %v, %d delivered, people %d %d", split, gotAny, delivered.Load(), w.people[0].Load(), w.people[1].Load())
		}
		if w.changedAt[0].Load() <= w.changedAt[1].Load() {
			t.Fatalf("split %d: room-3's last change not stamped after room-0's", split)
		}
	}
	// A room it does not follow is a protocol error.
	w := newWatcher([]int32{3})
	var delivered atomic.Int64
	p := &eventParser{hook: w.hook(func() int64 { return 1 }, &delivered, 1000)}
	if _, _, err := p.feed([]byte("event: presence\ndata: {\"room\":\"room-4\",\"people\":1}\n\n")); err == nil || !strings.Contains(err.Error(), "does not follow") {
		t.Fatalf("an unfollowed room: %v", err)
	}
}

// TestHookKeepsUserCount: a hook that does not claim an event leaves the
// "user count" handling as it was (the one-stream-per-room way's streams).
func TestHookKeepsUserCount(t *testing.T) {
	n := 0
	p := &eventParser{hook: func(event, _ []byte) (bool, error) {
		if string(event) == "user count" {
			n++
		}
		return false, nil
	}}
	v, got, err := p.feed([]byte("event: user count\ndata: 7\n\nevent: presence\ndata: {\"room\":\"a\",\"people\":7}\n\n"))
	if err != nil || !got || v != 7 || n != 1 {
		t.Fatalf("got %d %v %v, hook saw %d counts", v, got, err, n)
	}
}

func TestWatchConfigCheck(t *testing.T) {
	ok := watchConfig{Watchers: []int{500, 2000}, Rooms: 1000, Follow: 50, Present: 5000, Budget: 18500,
		Churn: 100, ChurnTime: 10 * time.Second, Sources: 4}
	if err := ok.check(20000); err != nil {
		t.Fatal(err)
	}
	if got := ok.streamWatchers(); got != 270 {
		t.Fatalf("streamWatchers = %d, want 270", got)
	}
	for name, mut := range map[string]func(*watchConfig){
		"unbalanced watchers": func(c *watchConfig) { c.Watchers = []int{510} },
		"budget over nofile":  func(c *watchConfig) { c.Budget = 19950 },
		"budget too small":    func(c *watchConfig) { c.Budget = 5040 },
		"rooms not in laps":   func(c *watchConfig) { c.Rooms = 1010 },
		"no churn":            func(c *watchConfig) { c.Churn = 0 },
	} {
		c := ok
		mut(&c)
		if err := c.check(20000); err == nil {
			t.Fatalf("%s: accepted", name)
		}
	}
}

func TestNetCPU(t *testing.T) {
	// A base of 1.0 s for 1,000 replacements: 1 ms each. With watchers,
	// 1.5 s for 1,000 and 100,000 updates: (1.5 - 1.0) s / 100,000 = 5 µs.
	// The base after, 1.2 s, moved 0.2 s: 2 µs per update.
	r := WatchResult{ChurnOpsBase: 1000, ChurnCPUBaseS: 1.0, ChurnOpsBase2: 1000, ChurnCPUBase2S: 1.2,
		ChurnOps: 1000, ChurnCPUS: 1.5, Delivered: 100000}
	r.netCPU()
	near := func(a, b float64) bool { return a-b < 1e-9 && b-a < 1e-9 }
	if !near(r.CPUPerUpdateUs, 5) || !near(r.BaseDriftUs, 2) || !near(r.GrossPerUpdate, 15) {
		t.Fatalf("net %v, drift %v, gross %v; want 5, 2, 15", r.CPUPerUpdateUs, r.BaseDriftUs, r.GrossPerUpdate)
	}
	empty := WatchResult{ChurnCPUS: 1.5, ChurnOps: 1000, Delivered: 10}
	empty.netCPU()
	if empty.CPUPerUpdateUs != 0 {
		t.Fatal("a figure without a base")
	}
}
