package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/presence/presence/internal/redistest"
)

// A node serves the global counts of a watched room that none of its
// streams is in, from its view of the cluster: watching adds no Redis
// traffic, however many watch.
func TestWatchAnotherNodeThroughRedis(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	n1 := startServer(t, "--redis-url", srv.URL(), "--node-id", "n1")
	n2 := startServer(t, "--redis-url", srv.URL(), "--node-id", "n2")
	dial(t, n1, "/rooms/far/events")
	waitUntil(t, 5*time.Second, "n2 to see n1's stream", func() bool {
		v := apiRoom(t, n2, "far")
		return v.Count == 1 && !v.Degraded
	})
	w := dial(t, n2, "/watch?rooms=far,near")
	firstPresence(t, w, "far:1/1", "near:0/0")
	start := time.Now()
	dial(t, n1, "/rooms/far/events")
	waitRoomPresence(t, w, "far", 2, 2)
	t.Logf("a join on n1 reached a watcher on n2 after %v", time.Since(start).Round(time.Millisecond))

	// n2's own Redis calls over a span at rest, then over as long a span
	// in which 100 watchers of 50 rooms each come.
	commands := func() float64 { return metric(t, n2, "presence_redis_commands_total") }
	const span = 2 * time.Second
	c0 := commands()
	time.Sleep(span) // a span of time at rest is what is measured
	atRest := commands() - c0
	rooms := []string{"far"}
	for i := range 49 {
		rooms = append(rooms, fmt.Sprintf("r%d", i))
	}
	list := strings.Join(rooms, ",")
	c1, spanStart := commands(), time.Now()
	var watchers []*sseClient
	for range 100 {
		watchers = append(watchers, dial(t, n2, "/watch?rooms="+list))
	}
	for _, c := range watchers {
		firstPresence(t, c, "far:2/2", "r0:0/0")
	}
	if time.Since(spanStart) > span {
		t.Fatalf("opening 100 watchers took %v, longer than the span measured", time.Since(spanStart))
	}
	time.Sleep(time.Until(spanStart.Add(span)))
	watching := commands() - c1
	t.Logf("n2's Redis calls in %v: %v at rest, %v while 100 watchers of 50 rooms opened", span, atRest, watching)
	if watching > atRest+3 {
		t.Errorf("watchers made Redis traffic grow: %v calls against %v at rest", watching, atRest)
	}

	// Every watcher follows the room on the other node.
	dial(t, n1, "/rooms/far/events")
	for _, c := range append(watchers, w) {
		waitRoomPresence(t, c, "far", 3, 3)
	}
}
