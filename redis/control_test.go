package redis

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/presence/presence/internal/redistest"
	"github.com/presence/presence/presence"
)

// A disconnect announced by one node reaches every other node, within
// milliseconds, with its block; not the node that announced it, which
// acted on it itself.
func TestAnnounceReachesTheOtherNodes(t *testing.T) {
	srv := redistest.Start(t)
	a, b, c := startNode(t, srv, "a"), startNode(t, srv, "b"), startNode(t, srv, "c")
	d := presence.Disconnect{User: "u:alice", Block: 1500 * time.Millisecond}
	if err := a.Announce(context.Background(), d); err != nil {
		t.Fatal(err)
	}
	heard := func(n *testNode) []presence.Disconnect {
		n.mu.Lock()
		defer n.mu.Unlock()
		return slices.Clone(n.told)
	}
	took := waitFor(t, time.Second, "b and c told", func() bool { return len(heard(b)) == 1 && len(heard(c)) == 1 })
	t.Logf("told %v after the announce", took.Round(time.Millisecond))
	if got := heard(b)[0]; got != d {
		t.Errorf("b heard %+v, want %+v", got, d)
	}
	if err := c.Announce(context.Background(), presence.Disconnect{Room: "r"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Second, "a and b told of the room", func() bool { return len(heard(a)) == 1 && len(heard(b)) == 2 })
	if got := heard(a)[0]; got != (presence.Disconnect{Room: "r"}) {
		t.Errorf("a heard %+v, want the room's disconnect", got)
	}
	if n := len(heard(c)); n != 1 {
		t.Errorf("c heard %d disconnects, want a's alone, not its own back", n)
	}
}

// A room's signed-in members with their connections are global: every
// node lists those of the others.
func TestSignedAfterIsGlobal(t *testing.T) {
	srv := redistest.Start(t)
	a, b := startNode(t, srv, "a"), startNode(t, srv, "b")
	alice := presence.Member{ID: "u:alice", Name: "Alice", Signed: true}
	a.Join("r", alice)
	b.Join("r", alice)
	b.Join("r", presence.Member{ID: "u:bob", Signed: true})
	b.Join("r", presence.Member{ID: "v:x"})
	waitFor(t, 5*time.Second, "a sees b's members", func() bool { return len(a.SignedAfter("r", "")) == 2 })
	got := a.SignedAfter("r", "")
	slices.SortFunc(got, func(x, y presence.MemberCount) int { return len(x.ID) - len(y.ID) })
	want := []presence.MemberCount{{ID: "u:bob", Connections: 1}, {ID: "u:alice", Name: "Alice", Connections: 2}}
	if !slices.Equal(got, want) {
		t.Errorf("a lists %+v, want %+v", got, want)
	}
	if got := a.SignedAfter("r", "u:alice"); len(got) != 1 || got[0].ID != "u:bob" {
		t.Errorf("after alice: %+v, want bob", got)
	}
}

// A node that starts during a block hears of it from Redis, for what is
// left of it; a disconnect without a block and a block over are not kept.
func TestLaterNodesReadTheBlocks(t *testing.T) {
	srv := redistest.Start(t)
	a := startNode(t, srv, "a")
	ctx := context.Background()
	for _, d := range []presence.Disconnect{
		{User: "u:alice", Block: time.Minute},
		{User: "u:alice", Block: time.Second}, // shorter: the minute stays
		{User: "u:bob"},
		{Room: "r"},
		{User: "u:carol", Block: 100 * time.Millisecond},
	} {
		if err := a.Announce(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(150 * time.Millisecond) // carol's block ends: nothing to await but Redis's clock
	b := startNode(t, srv, "b")
	waitFor(t, 5*time.Second, "b told of the blocks", func() bool {
		b.mu.Lock()
		defer b.mu.Unlock()
		return len(b.told) > 0
	})
	// Once more, synchronously, to see all that one read tells.
	b.mu.Lock()
	b.told = nil
	b.mu.Unlock()
	b.readBlocks(ctx)
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.told) != 1 || b.told[0].User != "u:alice" || b.told[0].Block <= 50*time.Second || b.told[0].Block > time.Minute {
		t.Errorf("b was told %+v; want alice's block alone, with most of its minute left", b.told)
	}
}
