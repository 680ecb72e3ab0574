package webhook

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/presence/presence/internal/option"
	"github.com/presence/presence/presence"
)

func hubOptions(grace time.Duration) presence.HubOptions {
	o := presence.DefaultHubOptions()
	o.Grace = grace
	return o
}

func TestEventsSignedAndInOrder(t *testing.T) {
	t.Parallel()
	rcv := newReceiver(t)
	_, hub := start(t, Options{URL: rcv.srv.URL, Settle: 50 * time.Millisecond}, hubOptions(0))
	a := join(t, hub, "support", user("alice", "Alice"))
	b := join(t, hub, "support", presence.Member{ID: "v:visitor"}) // not signed in: no member event
	rcv.waitEvents(2, 5*time.Second)
	a.Leave()
	b.Leave()
	got := rcv.waitEvents(4, 5*time.Second)
	want := []Event{
		{Name: "room_occupied", Room: "support"},
		{Name: "member_joined", Room: "support", UserID: "alice", UserName: "Alice"},
		{Name: "member_left", Room: "support", UserID: "alice", UserName: "Alice"},
		{Name: "room_vacated", Room: "support"},
	}
	if !slices.Equal(got, want) {
		t.Fatalf("events %v, want %v", got, want)
	}
}

func TestComeAndGoWithinSettleNeverMentioned(t *testing.T) {
	t.Parallel()
	rcv := newReceiver(t)
	const settle = 300 * time.Millisecond
	_, hub := start(t, Options{URL: rcv.srv.URL, Settle: settle}, hubOptions(0))
	stay := join(t, hub, "lobby2", user("bob", "Bob"))
	for i := range 5 {
		join(t, hub, "lobby2", user(fmt.Sprint("passer", i), "")).Leave()
		join(t, hub, "empty-again", user("carol", "Carol")).Leave()
	}
	// bob's arrival, and nothing of the others, well after they settled.
	got := rcv.waitEvents(2, 5*time.Second)
	time.Sleep(3 * settle) // nothing more may come: a wait for an absence
	if got = rcv.events(); len(got) != 2 || got[1].UserID != "bob" {
		t.Fatalf("events %v, want bob's room and bob only", got)
	}
	// A leave and a return within the window: an anonymous reader, who
	// has no grace, refreshes the page; bob too, as if he had none.
	join(t, hub, "quiet", presence.Member{}).Leave()
	reader := join(t, hub, "read", presence.Member{})
	rcv.waitEvents(3, 5*time.Second) // read occupied
	reader.Leave()
	reader = join(t, hub, "read", presence.Member{})
	stay.Leave()
	stay = join(t, hub, "lobby2", user("bob", "Bob"))
	time.Sleep(3 * settle)
	if got = rcv.events(); len(got) != 3 {
		t.Fatalf("events %v, want nothing of refreshes", got)
	}
	stay.Leave()
	reader.Leave()
	rcv.waitEvents(6, 5*time.Second)
}

func TestFailedDeliveriesRetried(t *testing.T) {
	t.Parallel()
	rcv := newReceiver(t)
	rcv.setStatus(http.StatusInternalServerError)
	reg := prometheus.NewRegistry()
	_, hub := start(t, Options{URL: rcv.srv.URL, MinBackoff: 50 * time.Millisecond, Metrics: reg}, hubOptions(0))
	join(t, hub, "game", user("dan", "Dan"))
	rcv.waitRequests(3, 5*time.Second) // two failures and a third try at least
	rcv.setStatus(0)
	got := rcv.waitEvents(2, 5*time.Second)
	if got[0].Name != "room_occupied" || got[1].Name != "member_joined" {
		t.Fatalf("events %v", got)
	}
	// The receiver has the events before the notifier hears its answer.
	waitMetric(t, reg, "events_sent_total", 2)
	if f := metric(t, reg, "requests_failed_total"); f < 2 {
		t.Errorf("failed %v, want 2 or more", f)
	}
	if r := metric(t, reg, "requests_retried_total"); r < 2 {
		t.Errorf("retried %v, want 2 or more", r)
	}
	if s := metric(t, reg, "events_sent_total"); s != 2 {
		t.Errorf("sent %v, want 2", s)
	}
	if q := metric(t, reg, "queue_length"); q != 0 {
		t.Errorf("queue length %v after delivery, want 0", q)
	}
	// Every try of the batch had its id, so that a receiver can drop one
	// it has.
	for _, try := range rcv.seen() {
		if try.id != rcv.seen()[0].id {
			t.Errorf("tries of one batch with ids %v", rcv.seen())
			break
		}
	}
}

func TestQueueBoundDropsOldest(t *testing.T) {
	t.Parallel()
	rcv := newReceiver(t)
	rcv.setStatus(http.StatusServiceUnavailable)
	const bound = 10
	reg := prometheus.NewRegistry()
	_, hub := start(t, Options{URL: rcv.srv.URL, Queue: bound, Metrics: reg, MinBackoff: 20 * time.Millisecond, MaxBackoff: 50 * time.Millisecond}, hubOptions(0))
	var rooms []string
	for i := range 3 * bound {
		rooms = append(rooms, fmt.Sprintf("r%02d", i))
		join(t, hub, rooms[i], presence.Member{})
	}
	waitMetric(t, reg, "events_dropped_total", 2*bound)
	rcv.setStatus(0)
	got := rcv.waitEvents(bound, 5*time.Second)
	for i, e := range got {
		if e.Room != rooms[2*bound+i] || e.Name != "room_occupied" {
			t.Fatalf("event %d is %v, want the newest %d kept in order: %v", i, e, bound, got)
		}
	}
}

// The receiver is away 20 s: the tries back off (1, 2, 4, 8 s...), and
// once it is back everything arrives, in order.
func TestReceiverDownThenBack(t *testing.T) {
	if testing.Short() {
		t.Skip("runs 20 s and more")
	}
	t.Parallel()
	rcv := newReceiver(t)
	rcv.setStatus(http.StatusBadGateway)
	_, hub := start(t, Options{URL: rcv.srv.URL}, hubOptions(0))
	var want []Event
	for i := range 3 { // someone stays in each room
		room := fmt.Sprintf("room-%d", i)
		join(t, hub, room, presence.Member{})
		want = append(want, Event{Name: "room_occupied", Room: room})
	}
	var last *presence.Stream
	for i := range 20 {
		room := fmt.Sprintf("room-%d", i%3)
		if i%4 == 3 { // the one who came a second ago goes
			last.Leave()
			prev := fmt.Sprintf("room-%d", (i-1)%3)
			want = append(want, Event{Name: "member_left", Room: prev, UserID: fmt.Sprint("u", i-1)})
		}
		last = join(t, hub, room, user(fmt.Sprint("u", i), ""))
		want = append(want, Event{Name: "member_joined", Room: room, UserID: fmt.Sprint("u", i)})
		time.Sleep(time.Second) // events spread over the outage
	}
	rcv.setStatus(0)
	got := rcv.waitEvents(len(want), 30*time.Second)
	if !slices.Equal(got, want) {
		t.Fatalf("after the outage:\n got %v\nwant %v", got, want)
	}
}

func TestOptionsRefused(t *testing.T) {
	t.Parallel()
	for _, o := range []Options{
		{URL: "ftp://x"}, {URL: "http://x", Rooms: []string{"[!a]"}}, {URL: "http://x", Queue: -1},
		{URL: "http://x", Settle: -1}, {URL: "http://x", MinBackoff: time.Minute, MaxBackoff: time.Second},
	} {
		var oe *option.Error
		if _, err := New(o); !errors.As(err, &oe) {
			t.Errorf("New(%+v): %v, want an *option.Error", o, err)
		}
	}
}

func TestRoomsFilter(t *testing.T) {
	t.Parallel()
	rcv := newReceiver(t)
	_, hub := start(t, Options{URL: rcv.srv.URL, Rooms: []string{"help-*"}}, hubOptions(0))
	join(t, hub, "other", presence.Member{})
	join(t, hub, "help-desk", presence.Member{})
	got := rcv.waitEvents(1, 5*time.Second)
	if got[0].Room != "help-desk" {
		t.Fatalf("events %v, want help-desk's only", got)
	}
}

// metric reads presence_webhook_<name> from reg.
func metric(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "presence_webhook_"+name {
			continue
		}
		m := mf.GetMetric()[0]
		if c := m.GetCounter(); c != nil {
			return c.GetValue()
		}
		return m.GetGauge().GetValue()
	}
	t.Fatalf("no metric presence_webhook_%s", name)
	return 0
}

// waitMetric waits until presence_webhook_<name> is want.
func waitMetric(t *testing.T, reg *prometheus.Registry, name string, want float64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for metric(t, reg, name) != want {
		if time.Now().After(deadline) {
			t.Fatalf("%s is %v, want %v", name, metric(t, reg, name), want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// On shutdown, what has not settled yet is told at once, and delivery is
// tried until the deadline.
func TestDrainTellsWhatIsLeft(t *testing.T) {
	t.Parallel()
	rcv := newReceiver(t)
	n, hub := build(t, Options{URL: rcv.srv.URL, Settle: time.Hour}, hubOptions(0))
	stop := run(n)
	join(t, hub, "closing", user("eve", "Eve")).Leave() // never told: undone within the hour
	fay := join(t, hub, "closing", user("fay", "Fay"))
	stop()
	if got := rcv.events(); len(got) != 0 {
		t.Fatalf("told %v before settling", got)
	}
	dctx, dcancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer dcancel()
	if err := n.Drain(dctx); err != nil {
		t.Fatal(err)
	}
	want := []Event{{Name: "room_occupied", Room: "closing"}, {Name: "member_joined", Room: "closing", UserID: "fay", UserName: "Fay"}}
	if got := rcv.events(); !slices.Equal(got, want) {
		t.Fatalf("drained %v, want %v", got, want)
	}

	// A receiver that is away: Drain gives up at its deadline.
	rcv.setStatus(http.StatusServiceUnavailable)
	fay.Leave()
	sctx, scancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer scancel()
	if err := n.Drain(sctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Drain with the receiver away: %v, want the deadline", err)
	}
}

// Under load a node sends at most one request a second, everything that
// came meanwhile in it; the first change of a quiet node goes at once.
func TestAtMostOneRequestASecond(t *testing.T) {
	t.Parallel()
	rcv := newReceiver(t)
	_, hub := start(t, Options{URL: rcv.srv.URL}, hubOptions(0))
	began := time.Now()
	join(t, hub, "first", presence.Member{})
	const n = 250
	for i := range n {
		join(t, hub, fmt.Sprintf("busy-%d", i), presence.Member{})
		time.Sleep(10 * time.Millisecond) // 2.5 s of changes, more on a loaded machine
	}
	busy := time.Since(began)
	rcv.waitEvents(n+1, 5*time.Second)
	tries := rcv.seen()
	if first := tries[0].at.Sub(began); first > 500*time.Millisecond {
		t.Errorf("the first change of a quiet node went after %v, want at once", first)
	}
	// Spacing is the node's: when it sent each request (its time_ms, to
	// the millisecond). Arrivals at the receiver also move with the
	// machine's load.
	for i := 1; i < len(tries); i++ {
		if gap := tries[i].sent.Sub(tries[i-1].sent); gap < 999*time.Millisecond {
			t.Errorf("requests sent %v apart, want a second at least", gap)
		}
	}
	// One at once, one a second while changes come, one for the last.
	if most := 2 + int(busy/time.Second); len(tries) > most {
		t.Errorf("%d requests for %v of changes, want at most %d", len(tries), busy, most)
	}
}
