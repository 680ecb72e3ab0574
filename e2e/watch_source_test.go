package e2e

import (
	"testing"
	"time"
)

// With --max-watch-rooms-per-ip, the watches of one address bring at most
// that many rooms nobody is in into existence: past it a watch, alone or
// on a room's stream, gets 429 with Retry-After and a JSON error, while
// another address still watches new rooms; watching rooms that exist never
// counts; a room's charge goes with its last watcher.
func TestWatchedRoomsPerIP(t *testing.T) {
	t.Parallel()
	s := startServer(t, "--max-watch-rooms-per-ip", "3")
	const a, b = "127.0.0.2", "127.0.0.3"
	ok := func(c *sseClient, what string) *sseClient {
		t.Helper()
		if c.Status != 200 {
			t.Fatalf("%s: %d %q", what, c.Status, c.Lines())
		}
		return c
	}
	dial(t, s, "/rooms/p/events").waitCount(t, 1) // a room with someone in it

	a1 := ok(dialFrom(t, s, a, "/watch?rooms=n1,n2"), "two new rooms")
	firstPresence(t, a1, "n1:0/0", "n2:0/0")
	wantTooMany(t, dialFrom(t, s, a, "/watch?rooms=n3,n4"), "two more new rooms from the same address")
	wantTooMany(t, dialFrom(t, s, a, "/rooms/own/events?watch=n5,n6"), "two more from a room's stream")
	if n := apiCount(t, s, "own"); n != 0 {
		t.Errorf("a refused room stream counts %d in its room", n)
	}
	ok(dialFrom(t, s, b, "/watch?rooms=m1,m2,m3"), "new rooms from another address")
	ok(dialFrom(t, s, a, "/watch?rooms=n1,m1,m2,p"), "rooms watched already or with people in them")
	ok(dialFrom(t, s, a, "/rooms/own/events?watch=n3"), "a third new room from a room's stream")
	wantTooMany(t, dialFrom(t, s, a, "/watch?rooms=n4"), "a fourth new room")

	// n2 goes with a1, its last watcher; n1 is still watched.
	a1.Close()
	waitUntil(t, 5*time.Second, "n2 released", func() bool { return metric(t, s, "presence_watched_rooms") == 5 })
	ok(dialFrom(t, s, a, "/watch?rooms=n4"), "a new room once one was released")
	if v := metric(t, s, `presence_refused_total{reason="watch_per_ip"}`); v != 3 {
		t.Errorf("refused watch_per_ip %v, want 3", v)
	}
}
