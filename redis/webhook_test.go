package redis

import (
	"cmp"
	"context"
	"slices"
	"testing"
	"time"

	"github.com/presence/presence/internal/redistest"
	"github.com/presence/presence/presence"
	"github.com/presence/presence/webhook"
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
	seqs, _, err := n.Claim(context.Background(), ts, 100)
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
	if _, err := a.Orphans(ctx, 100); err != nil {
		t.Fatal(err)
	}
	if got := outbox(t, srv); len(got) != 4 {
		t.Fatalf("outbox %v, want the 4 told (nothing of live nodes' orphans)", got)
	}
	if keys, _ := srv.Do("KEYS", "presence:wh:room:*"); keys != "" {
		t.Errorf("room keys left: %q", keys)
	}
}

// outbox returns the cluster's outbox, checking that its numbers increase.
func outbox(t *testing.T, srv *redistest.Server) []presence.Transition {
	t.Helper()
	entries, err := srv.Client().LRange(context.Background(), whOutbox, 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	var out []presence.Transition
	var last uint64
	for _, e := range entries {
		tr, seq, err := parseOutEntry(e)
		if err != nil {
			t.Fatal(err)
		}
		if seq <= last {
			t.Fatalf("outbox %q: numbers do not increase", entries)
		}
		last = seq
		out = append(out, tr)
	}
	return out
}

// A node that dies holding a room alone: another node ends what it held,
// once, members first.
func TestOrphansOfDeadNode(t *testing.T) {
	srv := redistest.Start(t)
	a, b, c := startNode(t, srv, "a"), startNode(t, srv, "b"), startNode(t, srv, "c")
	claim(t, a, occupied("r", true), person("r", "u:x", true), person("r", "u:y", true), occupied("s", true))
	claim(t, b, occupied("s", true))
	if _, err := srv.Do("DEL", whOutbox); err != nil { // what a told
		t.Fatal(err)
	}
	a.crash()
	waitFor(t, 3*testTimeout, "a's claims to end", func() bool {
		for _, n := range []*testNode{b, c} {
			if _, err := n.Orphans(context.Background(), 100); err != nil {
				t.Fatal(err)
			}
		}
		return len(outbox(t, srv)) > 0
	})
	time.Sleep(testTimeout / 2) // the other node's sweep, if it were to tell again
	for _, n := range []*testNode{b, c} {
		if _, err := n.Orphans(context.Background(), 100); err != nil {
			t.Fatal(err)
		}
	}
	got := outbox(t, srv)
	slices.SortStableFunc(got[:min(2, len(got))], func(x, y presence.Transition) int { return cmp.Compare(x.Member.ID, y.Member.ID) })
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

// One outbox for the cluster, in the order of the numbers, whichever node
// told; one sender at a time, by a lease; when the sender dies, another
// takes the lease within the node timeout and tries the same batch, under
// the same id; Delivered removes it.
func TestOutboxOneSenderInOrder(t *testing.T) {
	srv := redistest.Start(t)
	a, b := startNode(t, srv, "a"), startNode(t, srv, "b")
	ctx := context.Background()
	claim(t, a, occupied("r", true), person("r", "u:x", true))
	claim(t, b, occupied("r", true), person("r", "u:y", true))
	claim(t, a, person("r", "u:x", false), occupied("r", false))
	claim(t, b, person("r", "u:y", false), occupied("r", false))
	want := []presence.Transition{occupied("r", true), person("r", "u:x", true), person("r", "u:y", true),
		person("r", "u:x", false), person("r", "u:y", false), occupied("r", false)}
	if got := outbox(t, srv); !slices.Equal(got, want) {
		t.Fatalf("outbox %v, want %v", got, want)
	}
	first, err := a.Next(ctx, "pa", 4)
	if err != nil || !first.Sender || first.Waiting != 6 || !slices.Equal(first.Transitions, want[:4]) || first.ID == "" {
		t.Fatalf("a's first look: %+v, %v; want the sender, with the oldest 4 of 6", first, err)
	}
	if other, err := b.Next(ctx, "pb", 4); err != nil || other.Sender || len(other.Seqs) != 0 {
		t.Fatalf("b's look while a sends: %+v, %v; want not the sender", other, err)
	}
	claim(t, b, occupied("q", true))
	if again, _ := a.Next(ctx, "pa", 10); again.ID != first.ID || !slices.Equal(again.Seqs, first.Seqs) {
		t.Fatalf("a's batch again: %+v, want %+v", again, first)
	}
	a.crash() // without a word: its lease runs out
	var took webhook.Batch
	waitFor(t, 3*testTimeout, "b to take the lease", func() bool {
		var err error
		if took, err = b.Next(ctx, "pb", 10); err != nil {
			t.Fatal(err)
		}
		return took.Sender
	})
	if took.ID != first.ID || !slices.Equal(took.Seqs, first.Seqs) {
		t.Fatalf("b's batch after a died: %+v, want a's %+v", took, first)
	}
	if err := b.Delivered(ctx, took.Seqs[len(took.Seqs)-1]); err != nil {
		t.Fatal(err)
	}
	rest, err := b.Next(ctx, "pb", 10)
	if err != nil || rest.ID == first.ID || !slices.Equal(rest.Transitions, append(slices.Clone(want[4:]), occupied("q", true))) {
		t.Fatalf("after delivery: %+v, %v; want a new batch of the rest", rest, err)
	}
	if err := b.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if keys, _ := srv.Do("GET", whLease); keys != "" {
		t.Errorf("lease left after release: %q", keys)
	}
}

// The outbox keeps the newest limit, and says how many went.
func TestOutboxBound(t *testing.T) {
	srv := redistest.Start(t)
	a := startNode(t, srv, "a")
	var ts []presence.Transition
	for _, room := range []string{"r1", "r2", "r3", "r4", "r5"} {
		ts = append(ts, occupied(room, true))
	}
	_, dropped, err := a.Claim(context.Background(), ts, 3)
	if err != nil || dropped != 2 {
		t.Fatalf("dropped %d, %v; want 2", dropped, err)
	}
	var rooms []string
	for _, tr := range outbox(t, srv) {
		rooms = append(rooms, tr.Room)
	}
	if !slices.Equal(rooms, []string{"r3", "r4", "r5"}) {
		t.Fatalf("outbox %v, want the newest 3", rooms)
	}
	// Drops that eat the head of the batch being tried leave another
	// batch: the rest of it, under a new id.
	ctx := context.Background()
	tried, err := a.Next(ctx, "p", 2)
	if err != nil || len(tried.Seqs) != 2 {
		t.Fatalf("batch %+v, %v; want 2 events", tried, err)
	}
	if _, dropped, err := a.Claim(ctx, []presence.Transition{occupied("r6", true)}, 3); err != nil || dropped != 1 {
		t.Fatalf("dropped %d, %v; want 1", dropped, err)
	}
	rest, err := a.Next(ctx, "p", 10)
	if err != nil || rest.ID == tried.ID || !slices.Equal(rest.Seqs, tried.Seqs[1:]) {
		t.Fatalf("after a drop: %+v, %v; want the rest of %+v under a new id", rest, err, tried)
	}
}
