package e2e

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestStreamOpensWithRetryAndCount(t *testing.T) {
	t.Parallel()
	s := startServer(t, "--retry", "2500ms")
	a := dial(t, s, "/events")
	if a.Status != 200 {
		t.Fatalf("status %d", a.Status)
	}
	for k, want := range map[string]string{
		"Content-Type":      "text/event-stream",
		"Cache-Control":     "no-cache",
		"X-Accel-Buffering": "no",
	} {
		if got := a.Header.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	a.waitCount(t, 1)
	lines := a.Lines()
	want := []string{"retry: 2500", "", "event: user count", "data: 1", ""}
	if len(lines) < len(want) || strings.Join(lines[:len(want)], "\n") != strings.Join(want, "\n") {
		t.Fatalf("first lines %q, want %q", lines, want)
	}
}

func TestCountFollowsOpensAndCloses(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	a := dial(t, s, "/events")
	a.waitCount(t, 1)
	b := dial(t, s, "/events")
	b.waitCount(t, 2)
	a.waitCount(t, 2)
	c := dial(t, s, "/rooms/lobby/events") // the same room by its name
	c.waitCount(t, 3)
	a.waitCount(t, 3)

	other := dial(t, s, "/rooms/other/events")
	other.waitCount(t, 1)

	b.Close() // abrupt, like a killed process
	a.waitCount(t, 2)
	c.waitCount(t, 2)
	if got := other.Last(); got != 1 {
		t.Errorf("other room shows %d, want 1", got)
	}

	_, _, body := get(t, s.URL+"/api/rooms/lobby")
	if body != `{"room":"lobby","count":2,"connections":2}`+"\n" {
		t.Errorf("api room: %s", body)
	}
	_, _, body = get(t, s.URL+"/api/rooms")
	if body != `{"rooms":[{"room":"lobby","count":2,"connections":2},{"room":"other","count":1,"connections":1}],"total":2,"truncated":false}`+"\n" {
		t.Errorf("api rooms: %s", body)
	}
	_, _, body = get(t, s.URL+"/api/rooms?limit=1")
	if !strings.Contains(body, `"total":2,"truncated":true`) || strings.Contains(body, "other") {
		t.Errorf("api rooms limit=1: %s", body)
	}
	for _, c := range [][]int{a.Counts(), c.Counts(), other.Counts()} {
		for _, n := range c {
			if n < 0 {
				t.Errorf("negative count sent: %v", c)
			}
		}
	}
}

func TestReconnectWithOddLastEventID(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	for _, id := range []string{"abc", "42", "", "-1", "9999999999999999999999", "ü"} {
		c := dial(t, s, "/events", "Last-Event-ID: "+id)
		if c.Status != 200 {
			t.Fatalf("Last-Event-ID %q: status %d", id, c.Status)
		}
		c.waitCount(t, 1)
		c.Close()
		waitUntil(t, 5*time.Second, "stream to leave", func() bool {
			_, _, body := get(t, s.URL+"/api/rooms/lobby")
			return strings.Contains(body, `"count":0`)
		})
	}
}

func TestHeartbeat(t *testing.T) {
	t.Parallel()
	s := startServer(t, "--heartbeat", "50ms", "--write-timeout", "1s")
	a := dial(t, s, "/events")
	a.waitFor(t, 5*time.Second, "two heartbeat comments", func() bool {
		n := 0
		for _, l := range a.Lines() {
			if strings.HasPrefix(l, ":") {
				n++
			}
		}
		return n >= 2
	})
}

func TestBadInput(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	long := strings.Repeat("a", 65)
	for _, tc := range []struct {
		path   string
		status int
	}{
		{"/rooms/" + long + "/events", 400},
		{"/rooms/bad%20name/events", 400},
		{"/rooms/%C3%A9t%C3%A9/events", 400},
		{"/rooms/a%2Fb/events", 400},
		{"/api/rooms/" + long, 400},
		{"/api/rooms/semi;colon", 400},
		{"/api/rooms?limit=0", 400},
		{"/api/rooms?limit=x", 400},
		{"/api/rooms?limit=100000", 400},
		{"/nope", 404},
		{"/rooms//events", 400},
	} {
		status, h, body := get(t, s.URL+tc.path)
		if status != tc.status {
			t.Errorf("%s: status %d, want %d (%s)", tc.path, status, tc.status, body)
			continue
		}
		var e struct{ Error string }
		if h.Get("Content-Type") != "application/json" || json.Unmarshal([]byte(body), &e) != nil || e.Error == "" {
			t.Errorf("%s: want a JSON error, got %q %q", tc.path, h.Get("Content-Type"), body)
		}
	}
	resp, err := http.Post(s.URL+"/events", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 405 {
		t.Errorf("POST /events: %d, want 405", resp.StatusCode)
	}
	http.DefaultClient.CloseIdleConnections()
	// The 65-character room must be refused and a 64-character one taken.
	c := dial(t, s, "/rooms/"+long[:64]+"/events")
	c.waitCount(t, 1)
}

func TestStreamCap(t *testing.T) {
	t.Parallel()
	s := startServer(t, "--max-streams", "2")
	a := dial(t, s, "/events")
	a.waitCount(t, 1)
	b := dial(t, s, "/rooms/x/events")
	b.waitCount(t, 1)
	for range 3 {
		status, h, body := get(t, s.URL+"/events")
		if status != 503 || h.Get("Retry-After") == "" || !strings.Contains(body, `"error"`) {
			t.Fatalf("over the cap: %d Retry-After=%q %s", status, h.Get("Retry-After"), body)
		}
	}
	if v := metric(t, s, `presence_refused_total{reason="stream_limit"}`); v != 3 {
		t.Errorf("refused metric %v, want 3", v)
	}
	b.Close()
	waitUntil(t, 5*time.Second, "a free slot", func() bool {
		c, err := dialErr(s.Addr, "/events")
		if err != nil {
			return false
		}
		defer c.Close()
		return c.Status == 200
	})
}

// metric returns the value of one sample line of /metrics, over HTTP or
// the tests' own HTTPS.
func metric(t *testing.T, s *testServer, name string) float64 {
	t.Helper()
	// Without gzip, as a scraper may: the service keeps a gzip writer of
	// about 800 KB in a pool while /metrics is scraped with it, which the
	// memory tests, scraping every 100 ms, would read as the service's
	// own heap, there or not at each collection.
	_, _, body := getWith(t, &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, DisableCompression: true}, s.URL+"/metrics")
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` (\S+)$`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("metric %s not found", name)
	}
	v, _ := strconv.ParseFloat(m[1], 64)
	return v
}

// metricAtLeast waits until name on s reads at least want, and returns
// what it reads then. A stream's end is counted once the server has
// finished it, a moment after its client saw the connection close, so a
// test that saw the close waits for the count. A test that wants an exact
// figure compares what it returns.
func metricAtLeast(t *testing.T, s *testServer, name string, want float64) float64 {
	t.Helper()
	var v float64
	waitUntil(t, 2*time.Second, fmt.Sprintf("%s at %v or more", name, want), func() bool {
		v = metric(t, s, name)
		return v >= want
	})
	return v
}

// A stream's first count already counts the stream: the publish of its own
// join, which says the same, is not sent to it again.
func TestOwnJoinIsNotSentTwice(t *testing.T) {
	t.Parallel()
	s := startServer(t, "--window", "50ms")
	a := dial(t, s, "/rooms/once/events")
	a.waitCount(t, 1)
	waitUntil(t, 5*time.Second, "the publish of a's join", func() bool {
		return metric(t, s, "presence_events_published_total") >= 1
	})
	b := dial(t, s, "/rooms/once/events")
	a.waitCount(t, 2)
	b.Close()
	a.waitCount(t, 1)
	if got := a.Counts(); !slices.Equal(got, []int{1, 2, 1}) {
		t.Errorf("a got counts %v, want [1 2 1]", got)
	}
}

func TestCoalescing(t *testing.T) {
	t.Parallel()
	const window = 200 * time.Millisecond
	s := startServer(t, "--window", window.String())
	obs := dial(t, s, "/rooms/c/events")
	obs.waitCount(t, 1)
	start := time.Now()
	var clients []*sseClient
	for range 40 {
		clients = append(clients, dial(t, s, "/rooms/c/events"))
	}
	obs.waitCount(t, 41)
	elapsed := time.Since(start)
	// One event on open, then at most one per window (the window may grow
	// under load, never shrink), and the last one exact.
	if got, most := len(obs.Counts()), 2+int(elapsed/window); got > most {
		t.Errorf("%d events in %s, want at most %d: %v", got, elapsed, most, obs.Counts())
	}
	for _, c := range clients {
		c.Close()
	}
	obs.waitCount(t, 1)
}

func TestChurnLeavesExactCounts(t *testing.T) {
	t.Parallel()
	s := startServer(t, "--window", "20ms")
	const n = 200
	clients := make([]*sseClient, n)
	var wg sync.WaitGroup
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := dialErr(s.Addr, "/rooms/churn/events")
			if err != nil {
				t.Error(err)
				return
			}
			clients[i] = c
			// Every fourth one leaves again at once.
			if i%4 == 0 {
				c.Close()
			}
		}()
	}
	wg.Wait()
	t.Cleanup(func() {
		for _, c := range clients {
			if c != nil {
				c.Close()
			}
		}
	})
	if t.Failed() {
		return
	}
	var open []*sseClient
	for i, c := range clients {
		if i%4 != 0 {
			open = append(open, c)
		}
	}
	for _, c := range open {
		c.waitCount(t, len(open))
	}
	// Half of the rest drop at once.
	for _, c := range open[:len(open)/2] {
		c.Close()
	}
	rest := open[len(open)/2:]
	for _, c := range rest {
		c.waitCount(t, len(rest))
	}
	for _, c := range clients {
		for _, v := range c.Counts() {
			if v < 1 {
				t.Fatalf("a client was sent %d: %v", v, c.Counts())
			}
		}
	}
	for _, c := range rest {
		if len(c.Counts()) == 0 {
			t.Fatal("an open stream got no count")
		}
	}
}

func TestRoomCap(t *testing.T) {
	t.Parallel()
	s := startServer(t, "--max-rooms", "1")
	a := dial(t, s, "/rooms/one/events")
	a.waitCount(t, 1)
	status, h, body := get(t, s.URL+"/rooms/two/events")
	if status != 503 || h.Get("Retry-After") == "" || !strings.Contains(body, "rooms") {
		t.Fatalf("second room: %d %q %s", status, h.Get("Retry-After"), body)
	}
	b := dial(t, s, "/rooms/one/events") // more streams in the same room are fine
	b.waitCount(t, 2)
}
