package e2e

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/presence/presence/internal/redistest"
	"github.com/presence/presence/webhook"
)

const hookSecret = "the-receiver-s-own-secret"

// hookReceiver is a backend's webhook endpoint: it checks every request as
// a receiver should (signature, timestamp, batch id), answers the first
// fail requests 500, and keeps the events of the batches it accepted, once
// per batch id and per event number, as docs/webhooks.md tells receivers.
type hookReceiver struct {
	t   *testing.T
	srv *httptest.Server

	mu       sync.Mutex
	fail     int
	down     bool // answer every request 500
	requests int
	ids      map[string]bool
	seqs     map[uint64]bool
	again    int // events dropped as told before
	events   []webhook.Event
}

func newHookReceiver(t *testing.T, fail int) *hookReceiver {
	r := &hookReceiver{t: t, fail: fail, ids: make(map[string]bool), seqs: make(map[uint64]bool)}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, err := io.ReadAll(req.Body)
		if err != nil {
			return
		}
		var b webhook.Body
		if !webhook.Verify(body, req.Header.Get(webhook.SignatureHeader), hookSecret) {
			t.Errorf("a request with a wrong signature: %q", req.Header.Get(webhook.SignatureHeader))
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		if err := json.Unmarshal(body, &b); err != nil || req.Header.Get(webhook.TimestampHeader) != fmt.Sprint(b.TimeMS) ||
			time.Since(time.UnixMilli(b.TimeMS)).Abs() > 5*time.Second || req.Header.Get(webhook.BatchHeader) != b.ID {
			t.Errorf("a request with a bad body or headers: %v %v %s", err, req.Header, body)
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		r.requests++
		if r.requests <= r.fail || r.down {
			http.Error(w, "not now", http.StatusInternalServerError)
			return
		}
		if r.ids[b.ID] {
			return // a batch it has
		}
		r.ids[b.ID] = true
		for _, e := range b.Events {
			switch {
			case e.Seq == 0:
				t.Errorf("event %v without a number", e)
			case r.seqs[e.Seq]:
				// Told again, as the docs say may happen when a node
				// dies between delivering and hearing so: dropped by
				// its number. A transition told twice would have two.
				r.again++
			default:
				r.seqs[e.Seq] = true
				r.events = append(r.events, e)
			}
		}
	}))
	t.Cleanup(r.srv.Close)
	return r
}

// got returns the events accepted so far, in order, without their numbers.
func (r *hookReceiver) setDown(down bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.down = down
}

func (r *hookReceiver) seen() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.requests
}

func (r *hookReceiver) got() []webhook.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := slices.Clone(r.events)
	for i := range out {
		out[i].Seq = 0
	}
	return out
}

// inOrder returns room's events sorted by their numbers, as a receiver of
// a cluster orders them, without the numbers.
func (r *hookReceiver) inOrder(room string) []webhook.Event {
	out := r.arrived(room)
	slices.SortFunc(out, func(a, b webhook.Event) int { return cmp.Compare(a.Seq, b.Seq) })
	for i := range out {
		out[i].Seq = 0
	}
	return out
}

// waitEvents waits for n events and returns them.
func (r *hookReceiver) waitEvents(t *testing.T, timeout time.Duration, n int) []webhook.Event {
	t.Helper()
	waitUntil(t, timeout, fmt.Sprintf("%d webhook events", n), func() bool { return len(r.got()) >= n })
	return r.got()
}

func (r *hookReceiver) args() []string {
	return []string{"--webhook-url", r.srv.URL, "--webhook-secret", hookSecret}
}

func ev(name, room, user, userName string) webhook.Event {
	return webhook.Event{Name: name, Room: room, UserID: user, UserName: userName}
}

// One node: signed requests, the first answered 500 and retried; someone
// who comes and goes within the grace is never mentioned; someone who
// stays is, and their leave after the grace.
func TestWebhooksSignedRetriedAndSettled(t *testing.T) {
	t.Parallel()
	rcv := newHookReceiver(t, 2)
	// Long enough that a passer-by on a loaded machine still goes within it.
	const grace = 1500 * time.Millisecond
	s := startServer(t, append(rcv.args(), "--token-secret", testSecret, "--grace", grace.String())...)
	alice := dial(t, s, "/rooms/support/events?token="+token(t, testSecret, "alice", "Alice", nil))
	aliceAt := time.Now()
	alice.waitCount(t, 1)
	for range 3 { // passers-by, signed in and not, within the grace
		bob := dial(t, s, "/rooms/support/events?token="+token(t, testSecret, "bob", "Bob", nil))
		anon := dial(t, s, "/rooms/quick/events")
		bob.waitCount(t, 2)
		anon.waitCount(t, 1)
		bob.Close()
		anon.Close()
	}
	// Two failures: tries at 1 s and 3 s, then delivered.
	want := []webhook.Event{ev("room_occupied", "support", "", ""), ev("member_joined", "support", "alice", "Alice")}
	if got := rcv.waitEvents(t, 10*time.Second, 2); !slices.Equal(got, want) {
		t.Fatalf("events %v, want %v", got, want)
	}
	time.Sleep(time.Until(aliceAt.Add(grace))) // alice earns her grace
	alice.Close()
	want = append(want, ev("member_left", "support", "alice", "Alice"), ev("room_vacated", "support", "", ""))
	got := rcv.waitEvents(t, 10*time.Second, 4)
	time.Sleep(2 * grace) // a wait for an absence: nothing else comes
	if got = rcv.got(); !slices.Equal(got, want) {
		t.Fatalf("events %v, want %v", got, want)
	}
}

// Three nodes on one Redis: a room spread over them is occupied and
// vacated once; kill -9 of the node with the last person of a room gives
// one member_left and one room_vacated, from another node.
func TestWebhooksThreeNodesOncePerCluster(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	rcv := newHookReceiver(t, 0)
	nodes := webhookNodes(t, srv, rcv, "n1", "n2", "n3")
	tok := func(sub, name string) string { return "?token=" + token(t, testSecret, sub, name, nil) }
	a := dial(t, nodes[0], "/rooms/spread/events"+tok("ann", "Ann"))
	a2 := dial(t, nodes[1], "/rooms/spread/events"+tok("ann", "Ann")) // Ann on two nodes
	b := dial(t, nodes[1], "/rooms/spread/events"+tok("ben", "Ben"))
	c := dial(t, nodes[2], "/rooms/spread/events")
	waitAllCount(t, 5*time.Second, 3, []*sseClient{a, a2, b, c})
	got := rcv.waitEvents(t, 10*time.Second, 3)
	time.Sleep(time.Second) // a wait for an absence: no node tells it again
	for _, c := range []*sseClient{a, a2, b, c} {
		c.Close()
	}
	got = rcv.waitEvents(t, 10*time.Second, 6)
	time.Sleep(time.Second)
	got = rcv.got()
	count := func(e webhook.Event) int {
		return len(slices.DeleteFunc(slices.Clone(got), func(x webhook.Event) bool { return x != e }))
	}
	for _, e := range []webhook.Event{
		ev("room_occupied", "spread", "", ""), ev("member_joined", "spread", "ann", "Ann"), ev("member_joined", "spread", "ben", "Ben"),
		ev("member_left", "spread", "ann", "Ann"), ev("member_left", "spread", "ben", "Ben"), ev("room_vacated", "spread", "", ""),
	} {
		if n := count(e); n != 1 {
			t.Errorf("%v told %d times, want once: %v", e, n, got)
		}
	}
	if len(got) != 6 {
		t.Fatalf("events %v, want 6", got)
	}
	// Told by different nodes, in order by their numbers.
	if o := rcv.inOrder("spread"); o[0].Name != "room_occupied" || o[5].Name != "room_vacated" {
		t.Errorf("spread's events by their numbers: %v, want occupied first and vacated last", o)
	}

	// Cleo on n3 is the last person of "doomed": n3 is killed.
	dial(t, nodes[2], "/rooms/doomed/events"+tok("cleo", "Cleo")).waitCount(t, 1)
	got = rcv.waitEvents(t, 10*time.Second, 8)
	nodes[2].kill()
	killed := time.Now()
	got = rcv.waitEvents(t, 15*time.Second, 10)
	took := time.Since(killed)
	time.Sleep(2 * time.Second) // n1 and n2 both look for dead nodes: one tells
	got = rcv.got()
	want := []webhook.Event{ev("member_left", "doomed", "cleo", "Cleo"), ev("room_vacated", "doomed", "", "")}
	if len(got) != 10 || !slices.Equal(got[8:], want) {
		t.Fatalf("after kill -9: %v, want %v once", got[6:], want)
	}
	rcv.mu.Lock()
	again := rcv.again
	rcv.mu.Unlock()
	t.Logf("told %v after kill -9 (node timeout 3s); %d events told again, dropped by number", took.Round(time.Millisecond), again)
}

// A node killed after it claimed transitions and before it delivered
// them: another node delivers them, then what the death makes, within
// 10 s of the kill.
func TestWebhooksOfKilledSenderToldByAnother(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	rcv := newHookReceiver(t, 0)
	rcv.setDown(true)
	nodes := webhookNodes(t, srv, rcv, "k1", "k2")
	dial(t, nodes[1], "/rooms/lost/events?token="+token(t, testSecret, "dora", "Dora", nil)).waitCount(t, 1)
	waitUntil(t, 10*time.Second, "k2's first try", func() bool { return rcv.seen() > 0 })
	nodes[1].kill()
	killed := time.Now()
	rcv.setDown(false)
	rcv.waitEvents(t, 10*time.Second, 4)
	took := time.Since(killed)
	time.Sleep(2 * time.Second) // a wait for an absence: told once
	want := []webhook.Event{
		ev("room_occupied", "lost", "", ""), ev("member_joined", "lost", "dora", "Dora"),
		ev("member_left", "lost", "dora", "Dora"), ev("room_vacated", "lost", "", ""),
	}
	if got := rcv.inOrder("lost"); !slices.Equal(got, want) {
		t.Fatalf("events by their numbers: %v, want %v", got, want)
	}
	if took > 10*time.Second {
		t.Errorf("told %v after the kill, want within 10s", took)
	}
	t.Logf("a killed node's events told by another %v after the kill (node timeout 3s)", took.Round(time.Millisecond))
}

// SIGTERM: the streams end, and the node tells who left before it exits,
// without waiting for the grace.
func TestWebhooksToldOnShutdown(t *testing.T) {
	t.Parallel()
	rcv := newHookReceiver(t, 0)
	s := startServer(t, append(rcv.args(), "--token-secret", testSecret, "--grace", "1s")...)
	dial(t, s, "/rooms/closing/events?token="+token(t, testSecret, "gus", "Gus", nil)).waitCount(t, 1)
	rcv.waitEvents(t, 10*time.Second, 2)
	if err := s.Stop(t); err != nil {
		t.Fatalf("exit: %v", err)
	}
	want := []webhook.Event{
		ev("room_occupied", "closing", "", ""), ev("member_joined", "closing", "gus", "Gus"),
		ev("member_left", "closing", "gus", "Gus"), ev("room_vacated", "closing", "", ""),
	}
	if got := rcv.got(); !slices.Equal(got, want) {
		t.Fatalf("events %v, want %v", got, want)
	}
}

// The receiver is away 20 s while people come and go: once it is back,
// everything arrives, in the order it happened.
func TestWebhooksReceiverDownThenBack(t *testing.T) {
	if testing.Short() {
		t.Skip("runs 20 s and more")
	}
	t.Parallel()
	rcv := newHookReceiver(t, 0)
	rcv.setDown(true)
	s := startServer(t, append(rcv.args(), "--token-secret", testSecret, "--grace", "200ms")...)
	var want []webhook.Event
	for i := range 3 { // someone stays in each room
		room := fmt.Sprintf("away-%d", i)
		dial(t, s, "/rooms/"+room+"/events").waitCount(t, 1)
		want = append(want, ev("room_occupied", room, "", ""))
	}
	var last *sseClient
	for i := range 20 {
		room, id := fmt.Sprintf("away-%d", i%3), fmt.Sprint("p", i)
		next := dial(t, s, "/rooms/"+room+"/events?token="+token(t, testSecret, id, "", nil))
		next.waitFor(t, 5*time.Second, "its first count", func() bool { return next.Last() >= 2 })
		want = append(want, ev("member_joined", room, id, ""))
		if i%4 == 3 { // the one who came a second ago goes: told after the grace
			last.Close()
			want = append(want, ev("member_left", fmt.Sprintf("away-%d", (i-1)%3), fmt.Sprint("p", i-1), ""))
		}
		last = next
		time.Sleep(time.Second)
	}
	rcv.setDown(false)
	got := rcv.waitEvents(t, 40*time.Second, len(want))
	if !slices.Equal(got, want) {
		t.Fatalf("after the outage:\n got %v\nwant %v", got, want)
	}
}
