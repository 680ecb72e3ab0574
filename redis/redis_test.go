package redis

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/presence/presence/internal/redistest"
	"github.com/presence/presence/presence"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testTimeout is the node timeout of these tests: short, so that expiry is
// quick to see.
const testTimeout = 600 * time.Millisecond

// testNode is one Backend running against the test's Redis.
type testNode struct {
	*Backend
	cancel  context.CancelFunc
	done    chan struct{}
	mu      sync.Mutex
	changed map[string]int // onChange calls by room
	told    []presence.Disconnect
}

func startNode(t *testing.T, srv *redistest.Server, id string) *testNode {
	t.Helper()
	return startNodeURL(t, srv.URL(), id)
}

// startNodeURL is startNode with Redis at url (through a proxy, say).
func startNodeURL(t *testing.T, url, id string) *testNode {
	t.Helper()
	b, err := New(Options{URL: url, NodeID: id, NodeTimeout: testTimeout})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	n := &testNode{Backend: b, cancel: cancel, done: make(chan struct{}), changed: map[string]int{}}
	go func() {
		defer close(n.done)
		b.Run(ctx, func(room string) {
			n.mu.Lock()
			n.changed[room]++
			n.mu.Unlock()
		}, func(d presence.Disconnect) {
			n.mu.Lock()
			n.told = append(n.told, d)
			n.mu.Unlock()
		})
	}()
	t.Cleanup(func() { n.crash(); n.rdb.Close() })
	waitFor(t, 5*time.Second, id+" healthy", func() bool { return b.Health() == nil })
	return n
}

// crash stops the node's loops without a word to the others, as kill -9.
func (n *testNode) crash() {
	n.cancel()
	<-n.done
}

func (n *testNode) changes(room string) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.changed[room]
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > timeout {
			t.Fatalf("after %v: still waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return time.Since(start)
}

// settled reports whether no node has a full read asked for or under way:
// the reads a start asks for (its first tick, its subscriptions, the first
// word from a node it did not know) come a random pause later.
func settled(nodes ...*testNode) func() bool {
	return func() bool {
		for _, n := range nodes {
			n.Backend.mu.Lock()
			due := n.status.resyncAsked || n.status.resyncing
			n.Backend.mu.Unlock()
			if due {
				return false
			}
		}
		return true
	}
}

func counts(room string, nodes ...*testNode) func() []int {
	return func() []int {
		var out []int
		for _, n := range nodes {
			out = append(out, n.Count(room).People)
		}
		return out
	}
}

func allAre(want int, f func() []int) func() bool {
	return func() bool {
		for _, v := range f() {
			if v != want {
				return false
			}
		}
		return true
	}
}

func TestNodesShareOneCount(t *testing.T) {
	srv := redistest.Start(t)
	a, b := startNode(t, srv, "a"), startNode(t, srv, "b")
	m := presence.Member{}
	a.Join("r", m)
	a.Join("r", m)
	if n, _ := b.Join("r", m); n.People < 1 {
		t.Fatalf("join returned %d", n)
	}
	both := counts("r", a, b)
	waitFor(t, 2*time.Second, "both nodes at 3", allAre(3, both))
	if c := b.changes("r"); c == 0 {
		t.Error("b's hub was never told that a's share changed")
	}
	if s := a.Shares("r"); s["a"] != 2 || s["b"] != 1 || len(s) != 2 {
		t.Errorf("shares = %v, want a:2 b:1", s)
	}
	rooms, total := b.Rooms(10, nil)
	if total != 1 || rooms[0] != (presence.RoomCount{Room: "r", Count: 3, Connections: 3}) {
		t.Errorf("rooms = %v (%d)", rooms, total)
	}
	a.Leave("r", m)
	a.Leave("r", m)
	waitFor(t, 2*time.Second, "both nodes at 1", allAre(1, both))
	b.Leave("r", m)
	waitFor(t, 2*time.Second, "both nodes at 0", allAre(0, both))
	if _, total := a.Rooms(10, nil); total != 0 {
		t.Errorf("a still lists %d rooms", total)
	}
}

// Steady churn on two nodes is carried by the published changes alone: no
// node has to re-read the others, and calls stay paced.
func TestChurnNeedsNoResync(t *testing.T) {
	srv := redistest.Start(t)
	a, b := startNode(t, srv, "a"), startNode(t, srv, "b")
	a.Join("warm", presence.Member{})
	b.Join("warm", presence.Member{})
	waitFor(t, 2*time.Second, "both nodes know each other", allAre(2, counts("warm", a, b)))
	waitFor(t, 2*time.Second, "the reads their start asked for done", settled(a, b))
	ra, rb, ca := a.Stats().Resyncs, b.Stats().Resyncs, a.Stats().Commands
	start := time.Now()
	want := 0
	for i := 0; time.Since(start) < time.Second; i++ {
		a.Join("r", presence.Member{})
		b.Join("r", presence.Member{})
		want += 2
		if i%2 == 1 {
			a.Leave("r", presence.Member{})
			want--
		}
		time.Sleep(500 * time.Microsecond)
	}
	waitFor(t, 2*time.Second, "both nodes agree", allAre(want, counts("r", a, b)))
	if da, db := a.Stats().Resyncs-ra, b.Stats().Resyncs-rb; da+db != 0 {
		t.Errorf("%d and %d resyncs during churn, want none", da, db)
	}
	// At most one flush per minFlushGap, plus ticks.
	if perSec := float64(a.Stats().Commands-ca) / time.Since(start).Seconds(); perSec > float64(time.Second/minFlushGap)+10 {
		t.Errorf("%.0f calls a second during churn, want at most %d", perSec, time.Second/minFlushGap+10)
	}
}

// 10,000 rooms across the cluster: every node lists them all with their
// global counts, and they all go when their streams do.
func TestTenThousandRooms(t *testing.T) {
	srv := redistest.Start(t)
	a, b := startNode(t, srv, "a"), startNode(t, srv, "b")
	const rooms = 10000
	name := func(i int) string { return "room-" + strconv.Itoa(i) }
	// each calls f for every stream: rooms alternate between the nodes, and
	// every tenth is on a too.
	each := func(f func(n *testNode, room string)) {
		for i := range rooms {
			f([]*testNode{a, b}[i%2], name(i))
			if i%10 == 0 {
				f(a, name(i))
			}
		}
	}
	listed := func(want int) func() bool {
		return func() bool {
			_, ta := a.Rooms(0, nil)
			_, tb := b.Rooms(0, nil)
			return ta == want && tb == want
		}
	}
	each(func(n *testNode, room string) { n.Join(room, presence.Member{}) })
	took := waitFor(t, 10*time.Second, "both nodes list 10,000 rooms", listed(rooms))
	t.Logf("10,000 rooms seen by both nodes after %v", took)
	if got := b.Count(name(10)).People; got != 2 {
		t.Errorf("room-10 on b: %d, want 2", got)
	}
	if got := a.Count(name(11)).People; got != 1 {
		t.Errorf("room-11 on a: %d, want 1", got)
	}
	// A whole rewrite of a hash this big (after FLUSHALL) fits in a script.
	if _, err := srv.Do("FLUSHALL"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "a's hash rewritten whole", func() bool {
		v, _ := srv.Do("HLEN", "presence:node:a")
		return v == strconv.Itoa(rooms/2+2) // its rooms (the even ones), :v and :i
	})
	if err := a.Health(); err != nil {
		t.Errorf("a after rewriting its hash: %v", err)
	}
	waitFor(t, 5*time.Second, "the counts right again", func() bool {
		return b.Count(name(10)).People == 2 && a.Count(name(11)).People == 1
	})
	each(func(n *testNode, room string) { n.Leave(room, presence.Member{}) })
	waitFor(t, 10*time.Second, "no rooms left", listed(0))
}

func TestAtRestFewCommands(t *testing.T) {
	srv := redistest.Start(t)
	a, b := startNode(t, srv, "a"), startNode(t, srv, "b")
	for i := range 200 {
		room := "room" + string(rune('a'+i%26))
		a.Join(room, presence.Member{})
		b.Join(room, presence.Member{})
	}
	waitFor(t, 2*time.Second, "rooms at 2×", func() bool { return a.Count("rooma").People == 16 && b.Count("rooma").People == 16 })
	// At rest means no full read due either.
	waitFor(t, 2*time.Second, "the reads their start asked for done", settled(a, b))
	rdb := srv.Client() // one connection: its HELLO comes before the first INFO
	redisTotal := func() float64 {
		info := rdb.InfoMap(context.Background(), "stats")
		f, err := strconv.ParseFloat(info.Item("Stats", "total_commands_processed"), 64)
		if err != nil || info.Err() != nil {
			t.Fatalf("INFO stats: %v %v", info.Err(), err)
		}
		return f
	}
	a0, b0, r0 := a.Stats().Commands, b.Stats().Commands, redisTotal()
	start := time.Now()
	time.Sleep(3 * testTimeout) // a span of time at rest is what is measured
	elapsed := time.Since(start).Seconds()
	calls := float64(a.Stats().Commands - a0 + b.Stats().Commands - b0)
	inRedis := redisTotal() - r0 - 1 // Redis also counts our first INFO
	// Nodes at rest still tick: no calls at all would mean no liveness,
	// and would make the ratio below meaningless (NaN passes any bound).
	if calls < elapsed {
		t.Fatalf("%.0f Redis calls by two nodes in %.1f s: the nodes are not ticking", calls, elapsed)
	}
	// The node's own calls: a tick every testTimeout/4 is 6.7 a second
	// here (1.3 with the default timeout).
	if perSec := float64(a.Stats().Commands-a0) / elapsed; perSec > 10 {
		t.Errorf("%.1f Redis calls a second at rest, want at most 10", perSec)
	}
	// Redis counts the commands inside scripts too; a tick must stay cheap
	// whatever the number of streams, rooms or nodes: at most 4.75 on
	// average (4, and 7 every 4th), which is 6.3 a second per node with
	// the default timeout.
	if perCall := inRedis / calls; perCall > 5 {
		t.Errorf("Redis counted %.2f commands per call at rest, want at most 5 (%v in %v calls)", perCall, inRedis, calls)
	}
	t.Logf("at rest: %.1f calls/s per node; Redis counted %.2f commands per call", calls/2/elapsed, inRedis/calls)
}

func TestBadOptions(t *testing.T) {
	for _, o := range []Options{
		{URL: "http://localhost"},
		{URL: "redis://localhost", NodeTimeout: time.Millisecond},
		{URL: "redis://localhost", NodeID: "a b"},
	} {
		if _, err := New(o); err == nil {
			t.Errorf("New(%+v) accepted", o)
		}
	}
}
