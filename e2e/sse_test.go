package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// sseClient is one real stream over a raw TCP connection, parsed by hand
// so that the tests see the exact bytes a browser gets.
type sseClient struct {
	conn   net.Conn
	Status int
	Header http.Header
	mu     sync.Mutex
	counts []int      // every user count received, in order
	events []sseEvent // every event received, in order
	lines  []string   // every line received
	err    error      // why the stream ended
	notify chan struct{}
	done   chan struct{}
}

// dial opens a stream at path with extra request header lines.
func dial(t *testing.T, s *testServer, path string, headers ...string) *sseClient {
	t.Helper()
	c, err := dialErr(s.Addr, path, headers...)
	if err != nil {
		t.Fatalf("dial %s: %v", path, err)
	}
	t.Cleanup(c.Close)
	return c
}

func dialErr(addr, path string, headers ...string) (*sseClient, error) {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	req := "GET " + path + " HTTP/1.1\r\nHost: " + addr + "\r\nAccept: text/event-stream\r\n"
	for _, h := range headers {
		req += h + "\r\n"
	}
	if _, err := io.WriteString(conn, req+"\r\n"); err != nil {
		conn.Close()
		return nil, err
	}
	c := &sseClient{conn: conn, notify: make(chan struct{}, 1), done: make(chan struct{})}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		conn.Close()
		return nil, err
	}
	c.Status, c.Header = resp.StatusCode, resp.Header
	go c.read(resp.Body)
	return c, nil
}

func (c *sseClient) read(body io.ReadCloser) {
	defer close(c.done)
	sc := bufio.NewScanner(body)
	event, data := "", ""
	for sc.Scan() {
		line := sc.Text()
		c.mu.Lock()
		c.lines = append(c.lines, line)
		switch {
		case line == "": // dispatch, as EventSource does
			if event != "" || data != "" {
				c.events = append(c.events, sseEvent{event, data})
			}
			if event == "user count" {
				n, err := strconv.Atoi(data)
				if err != nil {
					n = -1 << 31 // shows up as a wrong count
				}
				c.counts = append(c.counts, n)
			}
			event, data = "", ""
		case strings.HasPrefix(line, "event: "):
			event = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			data = strings.TrimPrefix(line, "data: ")
		}
		c.mu.Unlock()
		select {
		case c.notify <- struct{}{}:
		default:
		}
	}
	c.mu.Lock()
	c.err = sc.Err()
	if c.err == nil {
		c.err = io.EOF
	}
	c.mu.Unlock()
}

// sseEvent is one dispatched event.
type sseEvent struct{ name, data string }

// Events returns the data of every event named name so far.
func (c *sseClient) Events(name string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, e := range c.events {
		if e.name == name {
			out = append(out, e.data)
		}
	}
	return out
}

// NumEvents returns how many events came so far.
func (c *sseClient) NumEvents() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.events)
}

// Close drops the connection at once, like a killed client process.
func (c *sseClient) Close() { c.conn.Close() }

// Counts returns every count received so far.
func (c *sseClient) Counts() []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]int(nil), c.counts...)
}

// Lines returns every line received so far.
func (c *sseClient) Lines() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.lines...)
}

// Last returns the latest count, or -1 before any.
func (c *sseClient) Last() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.counts) == 0 {
		return -1
	}
	return c.counts[len(c.counts)-1]
}

// waitFor waits until cond holds of the client, or fails after timeout.
func (c *sseClient) waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for !cond() {
		select {
		case <-c.notify:
		case <-c.done:
			if !cond() {
				t.Fatalf("stream ended (%v) before %s; counts %v", c.err, what, c.Counts())
			}
			return
		case <-deadline.C:
			t.Fatalf("timed out after %s waiting for %s; counts %v", timeout, what, c.Counts())
		}
	}
}

// waitCount waits until the latest count is want.
func (c *sseClient) waitCount(t *testing.T, want int) {
	t.Helper()
	c.waitFor(t, 5*time.Second, fmt.Sprintf("count %d", want), func() bool { return c.Last() == want })
}

// waitEnd waits until the server ends the stream.
func (c *sseClient) waitEnd(t *testing.T, timeout time.Duration) {
	t.Helper()
	select {
	case <-c.done:
	case <-time.After(timeout):
		t.Fatalf("stream still open after %s", timeout)
	}
}

// getJSON fetches url and returns status and body.
func get(t *testing.T, url string) (int, http.Header, string) {
	t.Helper()
	return getWith(t, &http.Transport{}, url)
}

// getWith is get over tr, which it closes.
func getWith(t *testing.T, tr *http.Transport, url string) (int, http.Header, string) {
	t.Helper()
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 5 * time.Second}).Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// waitUntil polls cond (for state not visible as stream bytes, such as
// metrics) until it holds or timeout passes.
func waitUntil(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
