package e2e

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/presence/presence/internal/redistest"
	"github.com/presence/presence/webhook"
)

// arrived returns room's events in the order the receiver accepted them,
// with their numbers.
func (r *hookReceiver) arrived(room string) []webhook.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []webhook.Event
	for _, e := range r.events {
		if e.Room == room {
			out = append(out, e)
		}
	}
	return out
}

// webhookNodes starts a node per id on the Redis at srv, telling rcv, with
// a grace of 200 ms.
func webhookNodes(t *testing.T, srv *redistest.Server, rcv *hookReceiver, ids ...string) []*testServer {
	t.Helper()
	var nodes []*testServer
	for _, id := range ids {
		nodes = append(nodes, startServer(t, append(rcv.args(), "--redis-url", srv.URL(), "--node-id", id,
			"--token-secret", testSecret, "--grace", "200ms")...))
	}
	return nodes
}

// checkArrivalOrder fails unless room's events reached the receiver in
// the order of their numbers, and returns them without the numbers.
func checkArrivalOrder(t *testing.T, rcv *hookReceiver, room string) []webhook.Event {
	t.Helper()
	got := rcv.arrived(room)
	for i := 1; i < len(got); i++ {
		if got[i].Seq <= got[i-1].Seq {
			t.Errorf("%s: %v (seq %d) arrived after %v (seq %d): out of order", room, got[i], got[i].Seq, got[i-1], got[i-1].Seq)
		}
	}
	for i := range got {
		got[i].Seq = 0
	}
	return got
}

// One room's people join and leave on three nodes, interleaved: the
// receiver gets the room's events in the order of their numbers, without
// sorting, as they come.
func TestWebhooksInOrderAcrossNodes(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	rcv := newHookReceiver(t, 0)
	nodes := webhookNodes(t, srv, rcv, "o1", "o2", "o3")
	const people = 12
	var streams []*sseClient
	for i := range people {
		name := fmt.Sprintf("p%02d", i)
		streams = append(streams, dial(t, nodes[i%3], "/rooms/mix/events?token="+token(t, testSecret, name, name, nil)))
		time.Sleep(70 * time.Millisecond) // transitions settle at different moments on different nodes
	}
	waitAllCount(t, 10*time.Second, people, streams)
	// Leaves interleaved with joins of others, on other nodes.
	for i := range people {
		streams[(i*5)%people].Close()
		name := fmt.Sprintf("q%02d", i)
		late := dial(t, nodes[(i+1)%3], "/rooms/mix/events?token="+token(t, testSecret, name, name, nil))
		late.waitFor(t, 5*time.Second, "a first count", func() bool { return len(late.Counts()) > 0 })
		time.Sleep(300 * time.Millisecond) // longer than the grace, or never mentioned
		late.Close()
	}
	want := 2 + 4*people // occupied, vacated, and a joined and a left per person
	waitUntil(t, 20*time.Second, fmt.Sprintf("%d events of mix", want), func() bool { return len(rcv.arrived("mix")) >= want })
	time.Sleep(time.Second) // a wait for an absence: nothing more
	got := checkArrivalOrder(t, rcv, "mix")
	if len(got) != want || got[0].Name != "room_occupied" || got[len(got)-1].Name != "room_vacated" {
		t.Fatalf("%d events %v, want %d, occupied first and vacated last", len(got), got, want)
	}
	joined := map[string]bool{}
	for _, e := range got[1 : len(got)-1] {
		switch {
		case e.Name == "member_joined" && !joined[e.UserID]:
			joined[e.UserID] = true
		case e.Name == "member_left" && joined[e.UserID]:
			delete(joined, e.UserID)
		default:
			t.Errorf("%v out of place in %v", e, got)
		}
	}
}

// kill -9 of the cluster's sender while the receiver is away: another node
// takes over within 10 s, and nothing is lost or out of order, the events
// of the dead node's end after what it had to send.
func TestWebhooksKilledSenderInOrder(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	rcv := newHookReceiver(t, 0)
	rcv.setDown(true)
	ids := []string{"s1", "s2", "s3"}
	nodes := webhookNodes(t, srv, rcv, ids...)
	var lease string
	waitUntil(t, 10*time.Second, "a sender", func() bool {
		lease, _ = srv.Do("GET", "presence:wh:sender")
		return lease != ""
	})
	sender := slices.Index(ids, strings.SplitN(lease, "\t", 2)[0])
	if sender < 0 {
		t.Fatalf("lease %q names no node", lease)
	}
	others := []int{(sender + 1) % 3, (sender + 2) % 3}
	tok := func(sub string) string { return "?token=" + token(t, testSecret, sub, sub, nil) }
	dial(t, nodes[others[0]], "/rooms/held/events"+tok("ann")).waitCount(t, 1)
	dial(t, nodes[sender], "/rooms/held/events"+tok("sid")).waitCount(t, 2)
	dial(t, nodes[others[1]], "/rooms/held/events"+tok("bea")).waitCount(t, 3)
	waitUntil(t, 10*time.Second, "the sender's tries of all three joins", func() bool {
		n, _ := srv.Do("LLEN", "presence:wh:outbox")
		return n == "4" && rcv.seen() > 1
	})
	nodes[sender].kill()
	killed := time.Now()
	rcv.setDown(false)
	rcv.waitEvents(t, 10*time.Second, 5)
	took := time.Since(killed)
	time.Sleep(2 * time.Second) // a wait for an absence: told once
	got := checkArrivalOrder(t, rcv, "held")
	if len(got) != 5 || got[0] != ev("room_occupied", "held", "", "") || got[4] != ev("member_left", "held", "sid", "sid") {
		t.Fatalf("events %v, want occupied, three joined, then sid left", got)
	}
	if took > 10*time.Second {
		t.Errorf("told %v after the kill, want within 10s", took)
	}
	t.Logf("the killed sender's outbox delivered by another %v after the kill (node timeout 3s)", took.Round(time.Millisecond))
}
