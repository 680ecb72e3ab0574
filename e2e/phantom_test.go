package e2e

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/presence/presence/internal/redistest"
)

// randVisitor is a made-up visitor id, as an attacker would send it.
func randVisitor() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// dialFrom is dial from the local address local (127.0.0.2 and so on are
// other client addresses on loopback).
func dialFrom(t *testing.T, s *testServer, local, path string, headers ...string) *sseClient {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
	conn, err := d.Dial("tcp", s.Addr)
	if err != nil {
		t.Fatalf("dial from %s: %v", local, err)
	}
	req := "GET " + path + " HTTP/1.1\r\nHost: " + s.Addr + "\r\nAccept: text/event-stream\r\n"
	for _, h := range headers {
		req += h + "\r\n"
	}
	if _, err := io.WriteString(conn, req+"\r\n"); err != nil {
		t.Fatal(err)
	}
	c := &sseClient{conn: conn, notify: make(chan struct{}, 1), done: make(chan struct{})}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		conn.Close()
		t.Fatalf("response to %s from %s: %v", path, local, err)
	}
	c.Status, c.Header = resp.StatusCode, resp.Header
	go c.read(resp.Body)
	t.Cleanup(c.Close)
	return c
}

// wantTooMany checks that c, refused for what, got 429 with Retry-After
// and a JSON error, as a client past a per-address bound does.
func wantTooMany(t *testing.T, c *sseClient, what string) {
	t.Helper()
	c.waitEnd(t, 5*time.Second)
	var body struct{ Error string }
	lines := c.Lines()
	if c.Status != 429 || c.Header.Get("Retry-After") == "" || len(lines) == 0 || json.Unmarshal([]byte(lines[0]), &body) != nil || body.Error == "" {
		t.Errorf("%s: %d Retry-After %q %q, want 429, Retry-After and a JSON error", what, c.Status, c.Header.Get("Retry-After"), lines)
	}
}

// openAndClose opens n streams, workers at a time, each at path(i) with a
// made-up visitor id; each reads its status line and closes, as a cheap
// attacker does.
func openAndClose(t *testing.T, addr string, n, workers int, path func(i int) string) {
	t.Helper()
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1)) - 1; i < n; i = int(next.Add(1)) - 1 {
				conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
				if err != nil {
					errs <- err
					return
				}
				fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path(i))
				line, err := bufio.NewReader(conn).ReadString('\n')
				conn.Close()
				if err != nil || !strings.Contains(line, " 200 ") {
					errs <- fmt.Errorf("stream %d: %q %v", i, line, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// Streams opened and closed cheaply, with made-up visitor ids, never make
// the room show more people than streams open at that moment: with default
// settings (a 3 s grace), 3,000 of them, 50 at a time, show about 50, and
// the room is back to its one real person at once, not after the grace.
func TestCheapStreamsMakeNoPhantoms(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	cheapStreamStorm(t, s, s)
}

// The same through Redis: the phantoms would reach every node.
func TestCheapStreamsMakeNoPhantomsThroughRedis(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	attacked := startServer(t, "--redis-url", srv.URL(), "--node-id", "n1")
	watched := startServer(t, "--redis-url", srv.URL(), "--node-id", "n2")
	cheapStreamStorm(t, attacked, watched)
}

// cheapStreamStorm opens and closes 3,000 streams with made-up visitor ids
// on attacked while one real person watches on watched.
func cheapStreamStorm(t *testing.T, attacked, watched *testServer) {
	t.Helper()
	const n, workers = 3000, 50
	obs := dial(t, watched, "/rooms/p/events", visitorCookie())
	obs.waitCount(t, 1)
	start := time.Now()
	openAndClose(t, attacked.Addr, n, workers, func(int) string { return "/rooms/p/events?visitor=" + randVisitor() })
	took := time.Since(start)
	obs.waitFor(t, 5*time.Second, "the room back to its one person", func() bool { return obs.Last() == 1 })
	back := time.Since(start) - took
	most := 0
	for _, c := range obs.Counts() {
		most = max(most, c)
	}
	t.Logf("%d streams opened and closed in %s; the watcher saw at most %d people; back to 1 %s after the last closed",
		n, took.Round(time.Millisecond), most, back.Round(time.Millisecond))
	// The server notices a close a moment after the client makes it, and
	// the stream is open until then: allow for that lag, a few workers'
	// worth. Phantoms would be thousands.
	if most > 4*workers {
		t.Errorf("the room showed %d people with at most %d streams open on the client side", most, workers+1)
	}
	if back > 1500*time.Millisecond { // the grace is 3 s
		t.Errorf("the room took %s to lose people whose streams had closed", back)
	}
}

// With --max-streams-per-ip, an address's open streams plus its streams in
// their grace stay within the bound; the next gets 429 with Retry-After and
// a JSON error; other addresses are not affected; a person refreshing is
// not refused. Behind a trusted proxy the forwarded address counts, and a
// client's own X-Forwarded-For is believed from no one else.
func TestMaxStreamsPerIP(t *testing.T) {
	t.Parallel()
	const grace = time.Second
	s := startServer(t, "--max-streams-per-ip", "3", "--grace", grace.String(), "--trusted-proxies", "127.0.0.3")
	ok := func(c *sseClient, what string) {
		t.Helper()
		if c.Status != 200 {
			t.Fatalf("%s: %d %q", what, c.Status, c.Lines())
		}
	}
	cookies := []string{visitorCookie(), visitorCookie(), visitorCookie()}
	var mine []*sseClient
	for i, ck := range cookies {
		c := dialFrom(t, s, "127.0.0.1", "/rooms/ip/events", ck)
		ok(c, fmt.Sprintf("stream %d", i+1))
		mine = append(mine, c)
	}
	opened := time.Now()
	wantTooMany(t, dialFrom(t, s, "127.0.0.1", "/rooms/other/events"), "a fourth stream of the address")
	wantTooMany(t, dialFrom(t, s, "127.0.0.1", "/rooms/ip/events", "X-Forwarded-For: 198.51.100.77"), "a fourth stream that names another address itself")
	ok(dialFrom(t, s, "127.0.0.2", "/rooms/ip/events"), "another address")
	for i := range 3 {
		ok(dialFrom(t, s, "127.0.0.3", "/rooms/ip/events", "X-Forwarded-For: 1.2.3.4, 198.51.100.1"), fmt.Sprintf("stream %d through the proxy", i+1))
	}
	wantTooMany(t, dialFrom(t, s, "127.0.0.3", "/rooms/ip/events", "X-Forwarded-For: 198.51.100.1"), "a fourth stream of a forwarded address")
	ok(dialFrom(t, s, "127.0.0.3", "/rooms/ip/events", "X-Forwarded-For: 198.51.100.2"), "another forwarded address")

	// A person who was there the grace closes: in their grace they still
	// count against the address...
	time.Sleep(time.Until(opened.Add(grace)))
	mine[1].Close()
	waitUntil(t, 5*time.Second, "the closed stream to be gone", func() bool { return metric(t, s, "presence_streams_open") == 7 })
	wantTooMany(t, dialFrom(t, s, "127.0.0.1", "/rooms/ip/events", visitorCookie()), "a new person while one is in their grace")
	// ...but they themself come back (a refresh).
	again := dialFrom(t, s, "127.0.0.1", "/rooms/ip/events", cookies[1])
	ok(again, "a refresh within the grace")
	again.Close() // after a moment: it did not earn a grace, and leaves at once
	waitUntil(t, 5*time.Second, "the refreshed stream to be gone", func() bool { return metric(t, s, "presence_streams_open") == 7 })
	ok(dialFrom(t, s, "127.0.0.1", "/rooms/ip/events", visitorCookie()), "a new person once the place is free")
	if v := metric(t, s, `presence_refused_total{reason="per_ip"}`); v != 4 {
		t.Errorf("refused per_ip %v, want 4", v)
	}
}

// Rooms that hold only people in their grace never keep a room of people
// who are here out.
func TestGhostRoomsDoNotLockOutNewRooms(t *testing.T) {
	t.Parallel()
	// As many streams as --max-rooms opened and closed, each in a room of
	// its own: they never earned a grace, and hold no room. (1,000 rooms
	// rather than the default 10,000 keep the test short; a long grace
	// makes sure that on the old code the rooms would still be held.)
	t.Run("short-lived", func(t *testing.T) {
		t.Parallel()
		const rooms = 1000
		s := startServer(t, "--max-rooms", strconv.Itoa(rooms), "--grace", "10s")
		openAndClose(t, s.Addr, rooms, 50, func(i int) string {
			return "/rooms/storm" + strconv.Itoa(i) + "/events?visitor=" + randVisitor()
		})
		c := dialFrom(t, s, "127.0.0.2", "/rooms/fresh/events")
		if c.Status != 200 {
			t.Fatalf("a new room after the storm: %d %q", c.Status, c.Lines())
		}
		c.waitCount(t, 1)
	})
	// Streams that lived their grace, in as many rooms as --max-rooms: once
	// closed, their rooms hold only people in their grace, and the oldest
	// gives way to a new room.
	t.Run("earned grace", func(t *testing.T) {
		t.Parallel()
		const rooms = 200
		// The default grace, 3 s; these people all come from one address,
		// so the per-address bound of graces is lifted.
		s := startServer(t, "--max-rooms", strconv.Itoa(rooms), "--max-grace-per-ip", "0")
		var cs []*sseClient
		for i := range rooms {
			c := dial(t, s, "/rooms/g"+strconv.Itoa(i)+"/events?visitor="+randVisitor())
			if c.Status != 200 {
				t.Fatalf("stream %d: %d", i, c.Status)
			}
			cs = append(cs, c)
		}
		if c := dialFrom(t, s, "127.0.0.2", "/rooms/full/events"); c.Status != 503 {
			t.Fatalf("a new room with %d rooms of open streams: %d, want 503", rooms, c.Status)
		}
		for _, c := range cs {
			c.waitCount(t, 1)
		}
		time.Sleep(3*time.Second + 100*time.Millisecond) // the streams earn their grace
		for _, c := range cs {
			c.Close()
		}
		waitUntil(t, 2*time.Second, "every stream closed", func() bool { return metric(t, s, "presence_streams_open") == 0 })
		if n := metric(t, s, "presence_rooms"); n != rooms {
			t.Fatalf("%v rooms held, want %d rooms of people in their grace", n, rooms)
		}
		start := time.Now()
		c := dialFrom(t, s, "127.0.0.2", "/rooms/fresh/events")
		if c.Status != 200 {
			t.Fatalf("a new room among %d rooms of people in their grace: %d %q", rooms, c.Status, c.Lines())
		}
		c.waitCount(t, 1)
		t.Logf("new room served in %s", time.Since(start).Round(time.Microsecond))
		// Exactly one room gave way (which one is the hub's order of the
		// closes, which the hub tests check).
		code, _, body := get(t, s.URL+"/api/rooms?limit=1000")
		var list struct{ Total int }
		if err := json.Unmarshal([]byte(body), &list); code != 200 || err != nil || list.Total != rooms {
			t.Errorf("GET /api/rooms: %d %v total %d, want %d rooms: %d in their grace and the new one", code, err, list.Total, rooms, rooms-1)
		}
		if v := apiCount(t, s, "fresh"); v != 1 {
			t.Errorf("the new room counts %d", v)
		}
	})
}

// apiCount is GET /api/rooms/{room}'s count.
func apiCount(t *testing.T, s *testServer, room string) int {
	t.Helper()
	code, _, body := get(t, s.URL+"/api/rooms/"+room)
	var v struct{ Count int }
	if err := json.Unmarshal([]byte(body), &v); code != 200 || err != nil {
		t.Fatalf("GET /api/rooms/%s: %d %q", room, code, body)
	}
	return v.Count
}

// Streams that earned their grace, closed and replaced at once by new
// made-up people, show no more than --max-grace-per-ip beyond the streams
// an address holds open; another address's graces are its own.
func TestRotatingPeopleAreBoundedPerAddress(t *testing.T) {
	const n, bound = 40, 5
	// A long grace, so that the graces of the first wave are all still
	// running while the second wave is open.
	s := startServer(t, "--grace", "2s", "--max-grace-per-ip", strconv.Itoa(bound))
	watcher := dialFrom(t, s, "127.0.0.3", "/rooms/rot/events")
	watcher.waitCount(t, 1)
	wave := func() []*sseClient {
		cs := make([]*sseClient, n)
		for i := range cs {
			cs[i] = dial(t, s, "/rooms/rot/events?visitor="+randVisitor())
		}
		return cs
	}
	first := wave()
	watcher.waitCount(t, n+1)
	// Held for the grace: they earn it.
	joined := time.Now()
	waitUntil(t, 10*time.Second, "the first wave to be there a grace", func() bool { return time.Since(joined) > 2200*time.Millisecond })
	for _, c := range first {
		c.Close()
	}
	waitUntil(t, 5*time.Second, "the first wave's closes seen", func() bool {
		return metric(t, s, "presence_streams_open") == 1
	})
	wave() // the first wave's graces are still running
	// A person of another address: their grace is not bounded by the
	// attacker's.
	other := dialFrom(t, s, "127.0.0.2", "/rooms/rot/events?visitor="+randVisitor())
	waitUntil(t, 5*time.Second, "the second wave and the other person counted", func() bool {
		return metric(t, s, "presence_streams_open") == n+2
	})
	otherJoined := time.Now()
	// At most bound of the first wave may still count as people.
	if got := apiCount(t, s, "rot"); got > n+2+bound {
		t.Errorf("room shows %d people with %d streams open and a grace bound of %d", got, n+2, bound)
	}
	if got := apiCount(t, s, "rot"); got < n+2 {
		t.Fatalf("room shows %d people, want at least the %d open", got, n+2)
	}
	peak := 0
	for _, c := range watcher.Counts() {
		peak = max(peak, c)
	}
	if peak > n+2+bound {
		t.Errorf("the watcher saw %d people with %d streams open and a grace bound of %d", peak, n+2, bound)
	}
	// The other address's person still gets a grace of their own.
	waitUntil(t, 10*time.Second, "the other person there a grace", func() bool { return time.Since(otherJoined) > 2200*time.Millisecond })
	before := apiCount(t, s, "rot")
	other.Close()
	waitUntil(t, 5*time.Second, "the other stream closed", func() bool {
		return metric(t, s, "presence_streams_open") == n+1
	})
	if got := apiCount(t, s, "rot"); got != before {
		t.Errorf("another address's person left at once (%d, was %d): their grace must not count against the attacker's bound", got, before)
	}
}
