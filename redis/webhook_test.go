package redis

import (
	"cmp"
	"context"
	"slices"
	"testing"
	"time"

	"github.com/presence/presence/internal/redistest"
	"github.com/presence/presence/presence"
)

func occupied(room string, arrived bool) presence.Transition {
	return presence.Transition{Room: room, Arrived: arrived}
}

func person(room, id string, arrived bool) presence.Transition {
	return presence.Transition{Room: room, Member: presence.MemberInfo{ID: id, Name: "N" + id}, Arrived: arrived}
}

// claim has n claim ts and returns which are n's to tell, checking that
// their numbers increase.
func claim(t *testing.T, n *testNode, ts ...presence.Transition) []bool {
	t.Helper()
	seqs, err := n.Claim(context.Background(), ts, 100)
	if err != nil {
		t.Fatal(err)
	}
	var last uint64
	ours := make([]bool, len(seqs))
	for i, s := range seqs {
		if s > 0 && s <= last {
			t.Fatalf("numbers %v do not increase", seqs)
		}
		last, ours[i] = max(last, s), s > 0
	}
	return ours
}

// A room and a person held by two nodes: the first to arrive and the last
// to leave tell, once each.
func TestClaimOncePerCluster(t *testing.T) {
	srv := redistest.Start(t)
	a, b := startNode(t, srv, "a"), startNode(t, srv, "b")
	ctx := context.Background()
	if got := claim(t, a, occupied("r", true), person("r", "u:x", true)); !slices.Equal(got, []bool{true, true}) {
		t.Fatalf("a's arrival: %v, want both told", got)
	}
	if got := claim(t, b, occupied("r", true), person("r", "u:x", true)); !slices.Equal(got, []bool{false, false}) {
		t.Fatalf("b's arrival: %v, want neither (a told them)", got)
	}
	if got := claim(t, b, occupied("r", true)); !slices.Equal(got, []bool{false}) {
		t.Fatalf("b's arrival again: %v, want nothing (it holds it)", got)
	}
	if got := claim(t, a, person("r", "u:x", false), occupied("r", false)); !slices.Equal(got, []bool{false, false}) {
		t.Fatalf("a leaves: %v, want neither (b still holds both)", got)
	}
	if got := claim(t, b, person("r", "u:x", false), occupied("r", false)); !slices.Equal(got, []bool{true, true}) {
		t.Fatalf("b leaves last: %v, want both told", got)
	}
	if orphans, _, err := a.Orphans(ctx, 100); err != nil || len(orphans) != 0 {
		t.Fatalf("orphans of live nodes: %v, %v", orphans, err)
	}
	if keys, _ := srv.Do("KEYS", "presence:wh:room:*"); keys != "" {
		t.Errorf("room keys left: %q", keys)
	}
}

// A node that dies holding a room alone: another node ends what it held,
// once, members first.
func TestOrphansOfDeadNode(t *testing.T) {
	srv := redistest.Start(t)
	a, b, c := startNode(t, srv, "a"), startNode(t, srv, "b"), startNode(t, srv, "c")
	claim(t, a, occupied("r", true), person("r", "u:x", true), person("r", "u:y", true), occupied("s", true))
	claim(t, b, occupied("s", true))
	if err := a.Delivered(context.Background(), 4); err != nil { // what a told
		t.Fatal(err)
	}
	a.crash()
	var got []presence.Transition
	waitFor(t, 3*testTimeout, "a's claims to end", func() bool {
		for _, n := range []*testNode{b, c} {
			ts, seqs, err := n.Orphans(context.Background(), 100)
			if err != nil || len(seqs) != len(ts) {
				t.Fatal(err, seqs)
			}
			got = append(got, ts...)
		}
		return len(got) > 0
	})
	time.Sleep(testTimeout / 2) // the other node's sweep, if it were to tell again
	for _, n := range []*testNode{b, c} {
		ts, _, _ := n.Orphans(context.Background(), 100)
		got = append(got, ts...)
	}
	slices.SortStableFunc(got[:2], func(x, y presence.Transition) int { return cmp.Compare(x.Member.ID, y.Member.ID) })
	want := []presence.Transition{
		{Room: "r", Member: presence.MemberInfo{ID: "u:x", Name: "Nu:x"}},
		{Room: "r", Member: presence.MemberInfo{ID: "u:y", Name: "Nu:y"}},
		{Room: "r"},
	}
	if !slices.Equal(got, want) {
		t.Fatalf("orphans %v, want %v (s stays: b holds it)", got, want)
	}
	if got := claim(t, b, occupied("s", false)); !slices.Equal(got, []bool{true}) {
		t.Fatalf("b leaving s after a died: %v, want told", got)
	}
}

// A node that dies before it told what it claimed: another node tells it,
// with the same numbers, before what the death itself makes.
func TestOutboxOfDeadNodeTold(t *testing.T) {
	srv := redistest.Start(t)
	a, b := startNode(t, srv, "a"), startNode(t, srv, "b")
	ctx := context.Background()
	seqs, err := a.Claim(ctx, []presence.Transition{occupied("r", true), person("r", "u:x", true)}, 100)
	if err != nil {
		t.Fatal(err)
	}
	// The outbox keeps what is told until Delivered, and follows a
	// rewrite.
	if err := a.Rewrite(ctx, []presence.Transition{occupied("r", true), person("r", "u:x", true)}, seqs); err != nil {
		t.Fatal(err)
	}
	a.crash()
	var got []presence.Transition
	var nums []uint64
	waitFor(t, 3*testTimeout, "a's outbox to be b's", func() bool {
		ts, ss, err := b.Orphans(ctx, 100)
		if err != nil {
			t.Fatal(err)
		}
		got, nums = append(got, ts...), append(nums, ss...)
		return len(got) > 0
	})
	want := []presence.Transition{occupied("r", true), person("r", "u:x", true), person("r", "u:x", false), occupied("r", false)}
	if !slices.Equal(got, want) {
		t.Fatalf("b tells %v, want %v", got, want)
	}
	if nums[0] != seqs[0] || nums[1] != seqs[1] || nums[2] <= nums[1] || nums[3] <= nums[2] {
		t.Errorf("numbers %v, want a's %v then new ones", nums, seqs)
	}
	// b's outbox holds them until b says they were told.
	if err := b.Delivered(ctx, 4); err != nil {
		t.Fatal(err)
	}
	if keys, _ := srv.Do("KEYS", "presence:wh:out:*"); keys != "" {
		t.Errorf("outboxes left: %q", keys)
	}
}

// The outbox keeps the newest limit, as the queue it mirrors does.
func TestOutboxBound(t *testing.T) {
	srv := redistest.Start(t)
	a := startNode(t, srv, "a")
	var ts []presence.Transition
	for _, room := range []string{"r1", "r2", "r3", "r4", "r5"} {
		ts = append(ts, occupied(room, true))
	}
	if _, err := a.Claim(context.Background(), ts, 3); err != nil {
		t.Fatal(err)
	}
	out, err := srv.Client().LRange(context.Background(), whOutPrefix+a.holder(), 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	var rooms []string
	for _, e := range out {
		tr, _, err := parseOutEntry(e)
		if err != nil {
			t.Fatal(err)
		}
		rooms = append(rooms, tr.Room)
	}
	if !slices.Equal(rooms, []string{"r3", "r4", "r5"}) {
		t.Fatalf("outbox %v, want the newest 3", rooms)
	}
}
