package redis

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/presence/presence/internal/redistest"
	"github.com/presence/presence/presence"
)

// Nodes that die, restart or leave: their shares go, and never come back.

func TestDeadNodeSharesExpire(t *testing.T) {
	srv := redistest.Start(t)
	a, b := startNode(t, srv, "a"), startNode(t, srv, "b")
	for range 5 {
		a.Join("r", presence.Member{})
	}
	b.Join("r", presence.Member{})
	waitFor(t, 2*time.Second, "b at 6", allAre(6, counts("r", b)))
	a.crash()
	took := waitFor(t, 5*time.Second, "b back at 1 after a died", allAre(1, counts("r", b)))
	// A hash lives testTimeout after its last renewal; b checks every
	// testTimeout/4.
	if bound := testTimeout*5/4 + 300*time.Millisecond; took > bound {
		t.Errorf("a's shares left after %v, want within %v", took, bound)
	}
	// Nothing a dead node wrote lives forever: its hash expires too, and
	// its place in the node set goes.
	waitFor(t, hashTTLFactor*testTimeout+time.Second, "a's hash to expire", func() bool {
		v, _ := srv.Do("EXISTS", "presence:node:a")
		return v == "0"
	})
	waitFor(t, hashTTLFactor*testTimeout+time.Second, "a to leave the node set", func() bool {
		v, err := srv.Do("ZSCORE", "presence:nodes", "a")
		return err == nil && v == ""
	})
}

func TestNodeRestartedUnderTheSameID(t *testing.T) {
	srv := redistest.Start(t)
	a, b := startNode(t, srv, "a"), startNode(t, srv, "b")
	for range 3 {
		a.Join("r", presence.Member{})
	}
	waitFor(t, 2*time.Second, "b at 3", allAre(3, counts("r", b)))
	a.crash()
	a2 := startNode(t, srv, "a") // a new process, same --node-id, fresh versions
	a2.Join("r", presence.Member{})
	waitFor(t, 2*time.Second, "b at 1: the new a's share, not the old one's", allAre(1, counts("r", b, a2)))
}

// A snapshot read before a restarted node's first message, and applied
// after it, must not bring back the old incarnation's shares. (Found by
// review.)
func TestOlderIncarnationNeverWins(t *testing.T) {
	srv := redistest.Start(t)
	b := startNode(t, srv, "b")
	old, young := "0000000000000001aaaa", "0000000000000002aaaa"
	// The old incarnation's hash, as it was when the snapshot ran.
	for _, cmd := range [][]string{
		{"HSET", "presence:node:a", "r", "5", ":v", "57", ":i", old},
		{"ZADD", "presence:nodes", strconv.FormatInt(time.Now().Add(time.Hour).UnixMilli(), 10), "a"},
	} {
		if _, err := srv.Do(cmd...); err != nil {
			t.Fatalf("%s: %v", cmd[0], err)
		}
	}
	// Without the newer incarnation's message, the snapshot brings the
	// old hash's 5: what the rest of the test holds must not happen.
	control := startNode(t, srv, "c")
	control.snapshot(context.Background())
	if got := control.Count("r").People; got != 5 {
		t.Fatalf("a snapshot alone gave %d, want the old incarnation's 5", got)
	}
	b.apply(`{"n":"a","i":"` + young + `","v":1,"k":"f","e":["r","1"]}`)
	if got := b.Count("r").People; got != 1 {
		t.Fatalf("after the message: %d", got)
	}
	b.snapshot(context.Background()) // reads the old hash
	if got := b.Count("r").People; got != 1 {
		t.Errorf("after the older snapshot: %d, want the new incarnation's 1", got)
	}
	// And a late message of the old incarnation is void too.
	b.apply(`{"n":"a","i":"` + old + `","v":58,"k":"f","e":["r","7"]}`)
	if got := b.Count("r").People; got != 1 {
		t.Errorf("after the old incarnation's late message: %d, want 1", got)
	}
}

func TestGracefulCloseRemovesSharesAtOnce(t *testing.T) {
	srv := redistest.Start(t)
	a, b := startNode(t, srv, "a"), startNode(t, srv, "b")
	a.Join("r", presence.Member{})
	b.Join("r", presence.Member{})
	waitFor(t, 2*time.Second, "b at 2", allAre(2, counts("r", b)))
	a.crash() // stop its loops first, as run does
	if err := a.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	took := waitFor(t, 2*time.Second, "b at 1", allAre(1, counts("r", b)))
	if took > testTimeout/2 {
		t.Errorf("a's share left after %v: expiry, not the goodbye", took)
	}
}
