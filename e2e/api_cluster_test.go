package e2e

import (
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/presence/presence/internal/redistest"
)

// memberPage is a page of GET /api/rooms/{room}/members.
type memberPage struct {
	Members []struct {
		ID          string `json:"id"`
		Name        string `json:"name"`
		Connections int    `json:"connections"`
	} `json:"members"`
	People int     `json:"people"`
	Next   *string `json:"next"`
}

func members(t *testing.T, s *testServer, room, query string) memberPage {
	t.Helper()
	code, body := serverCall(t, "GET", s.URL+"/api/rooms/"+room+"/members"+query, testAPIKey, "")
	var p memberPage
	if err := json.Unmarshal([]byte(body), &p); code != 200 || err != nil {
		t.Fatalf("GET members%s: %d %s", query, code, body)
	}
	return p
}

// bearer is the header of user's token.
func bearer(t *testing.T, user string) string {
	return "Authorization: Bearer " + token(t, testSecret, user, "Name "+user, nil)
}

// Three nodes on a real Redis: a room's members are listed from any node,
// a page at a time; a user's disconnect on one node closes their streams
// and watches on every node within a second, and their block refuses
// their new streams on every node until it ends; a room's disconnect
// closes the room's streams on every node.
func TestServerAPIAcrossNodes(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	var nodes []*testServer
	for _, id := range []string{"n1", "n2", "n3"} {
		nodes = append(nodes, startServer(t, "--redis-url", srv.URL(), "--node-id", id, "--api-key", testAPIKey, "--token-secret", testSecret))
	}

	// Members: alice on every node, seven more users spread over them, a
	// visitor.
	var alice, others []*sseClient
	for _, n := range nodes {
		alice = append(alice, dial(t, n, "/rooms/r/events", bearer(t, "alice")))
	}
	users := []string{"alice"}
	for i := range 7 {
		u := fmt.Sprintf("user%d", i)
		users = append(users, u)
		others = append(others, dial(t, nodes[i%3], "/rooms/r/events", bearer(t, u)))
	}
	others = append(others, dial(t, nodes[1], "/rooms/r/events", visitorCookie()))
	aliceWatch := dial(t, nodes[2], "/watch?rooms=q", bearer(t, "alice"))
	inQ := dial(t, nodes[0], "/rooms/q/events", bearer(t, "carol"))
	waitUntil(t, 5*time.Second, "every member seen from n2", func() bool { return members(t, nodes[1], "r", "").People == 9 })
	var got []string
	pages, query := 0, "?limit=3"
	for {
		p := members(t, nodes[1], "r", query)
		pages++
		for _, m := range p.Members {
			got = append(got, m.ID)
			want := 1
			if m.ID == "alice" {
				want = 3
			}
			if m.Connections != want || m.Name != "Name "+m.ID {
				t.Errorf("member %+v; want %d connections and the token's name", m, want)
			}
		}
		if p.People != 9 {
			t.Errorf("people %d, want 9 (8 signed in and a visitor)", p.People)
		}
		if p.Next == nil {
			break
		}
		if pages > 5 {
			t.Fatalf("more pages than members: %v", got)
		}
		query = "?limit=3&after=" + *p.Next
	}
	if !slices.Equal(got, users) || pages != 3 {
		t.Errorf("pages gave %v in %d pages; want %v in 3, sorted by id", got, pages, users)
	}

	// Alice's disconnect, called on n1, with a block of blockS seconds.
	const blockS = 4
	start := time.Now()
	a := postDisconnect(t, nodes[0].URL+"/api/users/alice/disconnect", fmt.Sprintf(`{"block_s": %d}`, blockS))
	if a.ClosedHere != 1 || !a.OthersTold || a.BlockedS != blockS {
		t.Errorf("answer %+v; want 1 closed on n1, the others told, blocked %d s", a, blockS)
	}
	waitEnded(t, time.Second-time.Since(start), append(alice, aliceWatch), append(others, inQ)...)
	t.Logf("alice's 4 streams on 3 nodes ended %v after the call was sent", time.Since(start).Round(time.Millisecond))
	// The block, on every node; then it ends.
	for _, n := range nodes {
		c, err := dialErr(n.Addr, "/rooms/r/events", bearer(t, "alice"))
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
		if c.Status != 403 || time.Since(start) > blockS*time.Second {
			t.Fatalf("alice's new stream on %s: %d (%v after the call); want 403 within the block", n.URL, c.Status, time.Since(start))
		}
	}
	c, err := dialErr(nodes[2].Addr, "/watch?rooms=q", bearer(t, "alice"))
	if err != nil || c.Status != 403 {
		t.Fatalf("alice's new watch during the block: %v %+v; want 403", err, c)
	}
	c.Close()
	// A node that starts during the block reads it from Redis.
	n4 := startServer(t, "--redis-url", srv.URL(), "--node-id", "n4", "--api-key", testAPIKey, "--token-secret", testSecret)
	waitUntil(t, 5*time.Second, "n4 ready", func() bool { code, _, _ := get(t, n4.URL+"/readyz"); return code == 200 })
	if c, err = dialErr(n4.Addr, "/rooms/r/events", bearer(t, "alice")); err != nil || c.Status != 403 || time.Since(start) > blockS*time.Second {
		t.Fatalf("alice's new stream on a node started during the block: %v %+v (%v after the call); want 403", err, c, time.Since(start))
	}
	c.Close()
	nodes = append(nodes, n4)
	for _, n := range nodes {
		waitUntil(t, (blockS+2)*time.Second, "alice let in again on "+n.URL, func() bool {
			c, err := dialErr(n.Addr, "/rooms/r/events", bearer(t, "alice"))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			return c.Status == 200
		})
	}
	if after := time.Since(start); after < blockS*time.Second {
		t.Errorf("alice was let in %v after the call, before the block of %d s ended", after, blockS)
	}

	// The room's disconnect, on n2: every stream of r, on every node; q's
	// stay.
	others = append(others, dial(t, n4, "/rooms/r/events", visitorCookie()))
	others[len(others)-1].waitFor(t, 5*time.Second, "a count", func() bool { return others[len(others)-1].Last() > 0 })
	start = time.Now()
	a = postDisconnect(t, nodes[1].URL+"/api/rooms/r/disconnect", "")
	if !a.OthersTold {
		t.Errorf("answer %+v; want the others told", a)
	}
	waitEnded(t, time.Second-time.Since(start), others, inQ)
	t.Logf("room r's 9 streams on 4 nodes ended %v after the call was sent", time.Since(start).Round(time.Millisecond))
	// Alice's streams and the room's; more if one of alice's probes above
	// was not closed yet.
	for i, want := range []float64{4, 4, 4, 1} {
		metricAtLeast(t, nodes[i], `presence_disconnects_total{reason="disconnected"}`, want)
	}
}
