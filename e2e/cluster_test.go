package e2e

import (
	"encoding/json"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/presence/presence/internal/redistest"
)

// roomView is GET /api/rooms/{room} with a shared backend.
type roomView struct {
	Count    int            `json:"count"`
	Nodes    map[string]int `json:"nodes"`
	Degraded bool           `json:"degraded"`
}

func apiRoom(t *testing.T, n *testServer, room string) roomView {
	t.Helper()
	code, _, body := get(t, n.URL+"/api/rooms/"+room)
	var v roomView
	if err := json.Unmarshal([]byte(body), &v); code != 200 || err != nil {
		t.Fatalf("GET /api/rooms/%s: %d %q", room, code, body)
	}
	return v
}

func waitAllCount(t *testing.T, timeout time.Duration, want int, clients []*sseClient) time.Duration {
	t.Helper()
	start := time.Now()
	waitUntil(t, timeout, "every client at the global count", func() bool {
		for _, c := range clients {
			if c.Last() != want {
				return false
			}
		}
		return true
	})
	return time.Since(start)
}

// Three nodes, clients spread over them, each seeing the global count
// through Redis; then a node is killed, Redis fails and comes back empty, its
// data is flushed, and a node stops gracefully: the counts are right again
// within the bounds the service promises, with default settings.
func TestThreeNodesShareOneCountThroughRedis(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	var nodes []*testServer
	for _, id := range []string{"n1", "n2", "n3"} {
		nodes = append(nodes, startServer(t, "--redis-url", srv.URL(), "--node-id", id))
	}
	var clients [3][]*sseClient
	var all []*sseClient
	for i, n := range nodes {
		for range 2 {
			c := dial(t, n, "/rooms/demo/events")
			clients[i] = append(clients[i], c)
			all = append(all, c)
		}
	}
	waitAllCount(t, 5*time.Second, 6, all)
	// A node says it is degraded until it has read the whole cluster once.
	waitUntil(t, 5*time.Second, "n1 current", func() bool { return !apiRoom(t, nodes[0], "demo").Degraded })
	v := apiRoom(t, nodes[0], "demo")
	if v.Count != 6 || v.Nodes["n1"] != 2 || v.Nodes["n2"] != 2 || v.Nodes["n3"] != 2 || v.Degraded {
		t.Errorf("GET /api/rooms/demo on n1 = %+v, want 6 with 2 per node", v)
	}

	// kill -9 of n3: its two streams leave every count within 5 s.
	nodes[2].kill()
	survivors := append(append([]*sseClient{}, clients[0]...), clients[1]...)
	took := waitAllCount(t, 5*time.Second, 4, survivors)
	t.Logf("count right %v after kill -9 of a node", took.Round(time.Millisecond))

	// Redis dies; a client of n1 leaves meanwhile; Redis comes back empty.
	srv.Stop()
	waitUntil(t, 5*time.Second, "n1 says it is degraded", func() bool {
		_, _, body := get(t, nodes[0].URL+"/readyz")
		return strings.Contains(body, `"degraded"`)
	})
	if code, _, _ := get(t, nodes[0].URL+"/readyz"); code != 200 {
		t.Errorf("a degraded node answers /readyz with %d, want 200 (it still serves)", code)
	}
	waitUntil(t, 5*time.Second, "n2's API says the view is degraded", func() bool { return apiRoom(t, nodes[1], "demo").Degraded })
	if v := metric(t, nodes[0], "presence_redis_degraded"); v != 1 {
		t.Errorf("presence_redis_degraded = %v during the outage, want 1", v)
	}
	if v := metric(t, nodes[0], "presence_redis_errors_total"); v < 1 {
		t.Errorf("presence_redis_errors_total = %v during the outage, want the errors counted", v)
	}
	clients[0][0].Close()
	waitAllCount(t, 2*time.Second, 3, clients[0][1:]) // n1 knows its own share exactly
	srv.Restart()
	took = waitAllCount(t, 5*time.Second, 3, append(clients[0][1:], clients[1]...))
	t.Logf("count right %v after Redis came back empty", took.Round(time.Millisecond))
	waitUntil(t, 5*time.Second, "n2 no longer degraded", func() bool { return !apiRoom(t, nodes[1], "demo").Degraded })

	// FLUSHALL: every node writes its shares again; a new client then
	// counts everywhere.
	if _, err := srv.Do("FLUSHALL"); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 5*time.Second, "the nodes' shares back in Redis", func() bool {
		a, _ := srv.Do("HGET", "presence:node:n1", "demo")
		b, _ := srv.Do("HGET", "presence:node:n2", "demo")
		return a == "1" && b == "2"
	})
	c := dial(t, nodes[0], "/rooms/demo/events")
	now := append([]*sseClient{c}, append(clients[0][1:], clients[1]...)...)
	waitAllCount(t, 5*time.Second, 4, now)

	// A graceful stop removes n2's share at once, not after the timeout.
	start := time.Now()
	if err := nodes[1].cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitAllCount(t, 5*time.Second, 2, []*sseClient{c, clients[0][1]})
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("n2's share left %v after SIGTERM; it should go at once", took)
	}
	select {
	case <-nodes[1].done:
	case <-time.After(10 * time.Second):
		t.Error("n2 did not exit after SIGTERM")
	}
	if err := nodes[1].exitErr(); err != nil {
		t.Errorf("n2 exited with %v", err)
	}
}
