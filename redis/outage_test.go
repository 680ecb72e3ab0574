package redis

import (
	"strings"
	"testing"
	"time"

	"github.com/presence/presence/internal/redistest"
	"github.com/presence/presence/presence"
)

// Redis in trouble: emptied, stopped, paused. The nodes serve what they
// know, say so, and are exact again soon after.

func TestExactAgainAfterFlushAll(t *testing.T) {
	srv := redistest.Start(t)
	a, b := startNode(t, srv, "a"), startNode(t, srv, "b")
	a.Join("r", presence.Member{})
	a.Join("q", presence.Member{})
	b.Join("r", presence.Member{})
	waitFor(t, 2*time.Second, "r at 2", allAre(2, counts("r", a, b)))
	if _, err := srv.Do("FLUSHALL"); err != nil {
		t.Fatal(err)
	}
	// Every node writes its hash again.
	waitFor(t, 5*time.Second, "both hashes rewritten", func() bool {
		x, _ := srv.Do("HGET", "presence:node:a", "r")
		y, _ := srv.Do("HGET", "presence:node:b", "r")
		return x == "1" && y == "1"
	})
	waitFor(t, 5*time.Second, "r at 2 and q at 1", func() bool {
		return allAre(2, counts("r", a, b))() && allAre(1, counts("q", a, b))()
	})
	b.Join("q", presence.Member{})
	waitFor(t, 2*time.Second, "q at 2", allAre(2, counts("q", a, b)))
}

// threeInR starts nodes a and b on srv with two streams of a and one of b
// in room r, and waits until both count 3.
func threeInR(t *testing.T, srv *redistest.Server) (a, b *testNode, both func() []int) {
	t.Helper()
	a, b = startNode(t, srv, "a"), startNode(t, srv, "b")
	a.Join("r", presence.Member{})
	a.Join("r", presence.Member{})
	b.Join("r", presence.Member{})
	both = counts("r", a, b)
	waitFor(t, 2*time.Second, "r at 3", allAre(3, both))
	return a, b, both
}

func TestRedisOutage(t *testing.T) {
	srv := redistest.Start(t)
	a, b, both := threeInR(t, srv)
	m := presence.Member{}

	srv.Stop()
	waitFor(t, 5*time.Second, "both degraded", func() bool { return a.Health() != nil && b.Health() != nil })
	// Each node still knows its own share exactly, and the others' as last
	// heard; one of a's clients leaves during the outage.
	a.Leave("r", m)
	if got := a.Count("r").People; got != 2 {
		t.Errorf("a during the outage: %d, want 2", got)
	}
	if got := b.Count("r").People; got != 3 {
		t.Errorf("b during the outage: %d, want the last known 3", got)
	}
	if err := a.Health(); !strings.Contains(err.Error(), "redis") {
		t.Errorf("health = %v", err)
	}

	srv.Restart() // empty, as after a crash that lost its data
	took := waitFor(t, 5*time.Second, "r at 2 on both and healthy", func() bool {
		return allAre(2, both)() && a.Health() == nil && b.Health() == nil
	})
	t.Logf("exact again %v after Redis came back", took)
	b.Join("r", m)
	waitFor(t, 2*time.Second, "r at 3 after the outage", allAre(3, both))
}

// Redis unreachable for a while with its data kept (here: every client
// paused): the nodes serve what they know, say so, and are exact again
// soon after, a leave made meanwhile included.
func TestRedisUnreachableThenBackWithItsData(t *testing.T) {
	srv := redistest.Start(t)
	a, b, both := threeInR(t, srv)
	m := presence.Member{}

	if _, err := srv.Do("CLIENT", "PAUSE", "3000", "ALL"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "both degraded", func() bool { return a.Health() != nil && b.Health() != nil })
	a.Leave("r", m)
	took := waitFor(t, 10*time.Second, "r at 2 on both and healthy", func() bool {
		return allAre(2, both)() && a.Health() == nil && b.Health() == nil
	})
	t.Logf("exact and healthy again %v after the leave made during the pause", took.Round(time.Millisecond))
}
