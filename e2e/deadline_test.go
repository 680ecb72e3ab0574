package e2e

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// A stream's write deadline covers one write and nothing else: a reader
// that keeps up is never cut off, whatever the protocol, the size of a
// write or the quiet before it. (Over HTTP/2 a deadline left set resets the
// stream when it fires, even with nothing to write; over HTTP/1.1 a stale
// one fails the next write that reaches the socket inside Write.)

const (
	dlWriteTimeout = time.Second
	dlHeartbeat    = 1500 * time.Millisecond
)

// dlArgs are the settings of these tests: a short write timeout, and
// heartbeats further apart than it, so that every stream has quiet spells
// longer than the timeout.
var dlArgs = []string{"--write-timeout", dlWriteTimeout.String(), "--heartbeat", dlHeartbeat.String()}

// protoServer is the service reached over one protocol: HTTP/1.1 over
// plain TCP (raw sockets, as in the other tests), or HTTP/2 over TLS, every
// stream on one connection.
type protoServer struct {
	*testServer
	h2    *http.Transport // nil for HTTP/1.1
	h1    *http.Transport // HTTP/1.1 over TLS, a connection per stream
	mu    sync.Mutex
	conns []net.Conn // the HTTP/2 transport's connections
}

// forEachProto runs test as parallel subtests, over HTTP/1.1 and HTTP/2.
func forEachProto(t *testing.T, test func(t *testing.T, proto string)) {
	for _, proto := range []string{"http1", "http2"} {
		t.Run(proto, func(t *testing.T) {
			t.Parallel()
			test(t, proto)
		})
	}
}

// startProto starts the service with args, over TLS for http2.
func startProto(t *testing.T, proto string, args ...string) *protoServer {
	t.Helper()
	if proto == "http1" {
		return &protoServer{testServer: startServer(t, args...)}
	}
	cert, key, pool := selfSigned(t, t.TempDir())
	p := &protoServer{testServer: startServer(t, append([]string{"--tls-cert", cert, "--tls-key", key}, args...)...)}
	if !strings.HasPrefix(p.URL, "https://") {
		t.Fatalf("listening on %q, want https", p.URL)
	}
	p.h2 = &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: pool},
		ForceAttemptHTTP2: true,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			if err == nil {
				p.mu.Lock()
				p.conns = append(p.conns, c)
				p.mu.Unlock()
			}
			return c, err
		},
	}
	p.h1 = &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool},
		TLSNextProto:    map[string]func(string, *tls.Conn) http.RoundTripper{}, // no HTTP/2
	}
	t.Cleanup(p.h2.CloseIdleConnections)
	t.Cleanup(p.h1.CloseIdleConnections)
	return p
}

// open opens a stream at path.
func (p *protoServer) open(t *testing.T, path string) *sseClient {
	t.Helper()
	c, err := p.openErr(path)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	t.Cleanup(c.Close)
	return c
}

func (p *protoServer) openErr(path string) (*sseClient, error) {
	if p.h2 == nil {
		return dialErr(p.Addr, path)
	}
	return p.openH2(path)
}

// member opens a stream at path for a client that reads and discards
// everything, on a connection of its own, as another browser would: over
// HTTP/2 every stream shares one connection, and a write there waits for
// the other streams' frames too. Parsing would cost the test's CPU, which
// the server's stream write deadline would see as slow readers.
func (p *protoServer) member(path string) (io.Closer, error) {
	var body io.ReadCloser
	if p.h2 == nil {
		conn, err := net.DialTimeout("tcp", p.Addr, 5*time.Second)
		if err != nil {
			return nil, err
		}
		if _, err := io.WriteString(conn, "GET "+path+" HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			conn.Close()
			return nil, err
		}
		body = conn
	} else {
		req, err := http.NewRequest("GET", p.URL+path, nil)
		if err != nil {
			return nil, err
		}
		resp, err := p.h1.RoundTrip(req)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode != 200 {
			resp.Body.Close()
			return nil, fmt.Errorf("status %d", resp.StatusCode)
		}
		body = resp.Body
	}
	go io.Copy(io.Discard, body)
	return body, nil
}

func (p *protoServer) openH2(path string) (*sseClient, error) {
	req, err := http.NewRequest("GET", p.URL+path, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "text/event-stream")
	resp, err := p.h2.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	if resp.ProtoMajor != 2 {
		resp.Body.Close()
		return nil, fmt.Errorf("%s, want HTTP/2", resp.Proto)
	}
	c := &sseClient{conn: h2Stream{body: resp.Body}, Status: resp.StatusCode, Header: resp.Header,
		notify: make(chan struct{}, 1), done: make(chan struct{})}
	go c.read(resp.Body)
	return c, nil
}

// h2Stream lets sseClient.Close end one stream read through an
// http.Transport (over HTTP/2 with RST_STREAM and CANCEL, as a browser
// does) rather than the connection: Close is the only method the client
// calls on it.
type h2Stream struct {
	net.Conn
	body io.Closer
}

func (s h2Stream) Close() error { return s.body.Close() }

// metric reads one sample from /metrics.
func (p *protoServer) metric(t *testing.T, name string) float64 {
	t.Helper()
	var body string
	if p.h2 == nil {
		_, _, body = get(t, p.URL+"/metrics")
	} else {
		_, _, body = getInsecure(t, p.URL+"/metrics")
	}
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` (\S+)$`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("metric %s not found", name)
	}
	v, _ := strconv.ParseFloat(m[1], 64)
	return v
}

func (p *protoServer) disconnects(t *testing.T, reason string) float64 {
	t.Helper()
	return p.metric(t, `presence_disconnects_total{reason="`+reason+`"}`)
}

// stayOpen fails if c ends within d.
func stayOpen(t *testing.T, c *sseClient, d time.Duration, what string) {
	t.Helper()
	start := time.Now()
	select {
	case <-c.done:
		t.Fatalf("%s: stream ended after %s (%v), want open for %s", what, time.Since(start).Round(time.Millisecond), c.err, d)
	case <-time.After(d):
	}
}

// heartbeats counts the heartbeat comments c received.
func heartbeats(c *sseClient) int {
	n := 0
	for _, l := range c.Lines() {
		if strings.HasPrefix(l, ":") {
			n++
		}
	}
	return n
}

// A stream in a quiet room idles for much longer than the write timeout
// plus the heartbeat and stays open, receiving heartbeats, on both
// protocols; no stream is evicted.
func TestQuietStreamStaysOpen(t *testing.T) {
	t.Parallel()
	forEachProto(t, func(t *testing.T, proto string) {
		s := startProto(t, proto, dlArgs...)
		c := s.open(t, "/rooms/quiet/events")
		c.waitCount(t, 1)
		idle := 3 * (dlWriteTimeout + dlHeartbeat)
		stayOpen(t, c, idle, "quiet room")
		// Heartbeats came all along (a few may be late on a busy machine).
		if n, want := heartbeats(c), int(idle/dlHeartbeat)-2; n < want {
			t.Errorf("%d heartbeats in %s, want at least %d", n, idle, want)
		}
		// And the stream still carries changes.
		s.open(t, "/rooms/quiet/events")
		c.waitCount(t, 2)
		if n := s.disconnects(t, "evicted"); n != 0 {
			t.Errorf("%v streams evicted, want 0", n)
		}
	})
}

// After a quiet spell longer than the write timeout, a burst of member
// events bigger than 64 KiB (more than net/http's buffers and HTTP/2's
// initial flow-control window) reaches a signed-in reader intact.
func TestBigBurstAfterQuietReachesReader(t *testing.T) {
	t.Parallel()
	forEachProto(t, func(t *testing.T, proto string) {
		// A window longer than the write timeout: the first join of the
		// burst is published at once, the rest together a window later,
		// after a quiet spell longer than the write timeout. (A timeout of
		// 2s rather than 1s: the members' clients, 180 of them reading
		// about 30 MB in all, must keep up under -race on a busy machine.)
		const members, window, writeTimeout = 180, 3 * time.Second, 2 * time.Second
		s := startProto(t, proto, "--token-secret", testSecret, "--members-cap", "1000",
			"--window", window.String(), "--write-timeout", writeTimeout.String(), "--heartbeat", "1h")
		r := s.open(t, "/rooms/big/events?token="+token(t, testSecret, "reader", "Reader", nil))
		r.waitFor(t, 5*time.Second, "the reader's member list", func() bool { return len(lastPresence(t, r).Members) == 1 })
		// The reader's own join may be published a window later: wait for
		// the room to be quiet for longer than the write timeout.
		time.Sleep(window + writeTimeout)

		// Long ids and names (the longest a token may carry) make each join
		// event about 390 bytes.
		want := map[string]bool{}
		burst := 0
		var wg sync.WaitGroup
		errs := make(chan error, members)
		for i := range members {
			id := fmt.Sprintf("member-%03d-%s", i, strings.Repeat("x", 240))
			name := fmt.Sprintf("Member %03d %s", i, strings.Repeat("n", 89))
			want[id] = true
			burst += len(`event: join\ndata: {"id":"","name":""}` + "\n\n" + id + name)
			tok := token(t, testSecret, id, name, nil)
			wg.Add(1)
			go func() {
				defer wg.Done()
				// Each on its own connection: signed-in members get the
				// burst too, and 180 copies of it on the reader's HTTP/2
				// connection would hold up the reader's write behind
				// theirs.
				c, err := s.member("/rooms/big/events?token=" + tok)
				if err != nil {
					errs <- err
					return
				}
				t.Cleanup(func() { c.Close() })
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("a member's stream: %v", err)
		}
		if burst <= 64<<10 {
			t.Fatalf("the burst is %d bytes, want more than 64 KiB", burst)
		}

		// Every member reaches the reader, as join events or in a whole list.
		seen := func() int {
			got := map[string]bool{}
			for _, d := range r.Events("join") {
				var m struct{ ID string }
				if json.Unmarshal([]byte(d), &m) == nil {
					got[m.ID] = true
				}
			}
			for _, d := range r.Events("presence") {
				for _, m := range decodePresence(t, d).Members {
					got[m.ID] = true
				}
			}
			n := 0
			for id := range want {
				if got[id] {
					n++
				}
			}
			return n
		}
		r.waitFor(t, 15*time.Second, fmt.Sprintf("all %d members (%d bytes)", members, burst), func() bool { return seen() == members })
		r.waitCount(t, members+1)
		select {
		case <-r.done:
			t.Fatalf("the reader's stream ended: %v", r.err)
		default:
		}
		if n := s.disconnects(t, "evicted"); n != 0 {
			t.Errorf("%v streams evicted, want 0", n)
		}
	})
}

// On one HTTP/2 connection, a stream whose reader stopped (its
// flow-control window full) is evicted, and only it; the others live
// through quiet spells and changes, and when their clients close them,
// one stream at a time (RST_STREAM) or the whole connection, they are
// counted as "client", never "evicted".
func TestHTTP2DisconnectReasons(t *testing.T) {
	t.Parallel()
	const n, extras = 20, 12
	s := startProto(t, "http2", dlArgs...)
	// A small receive window, so that the stalled stream fills it with
	// a few events; the readers' transport refreshes it as they read.
	s.h2.HTTP2 = &http.HTTP2Config{MaxReceiveBufferPerStream: 1024}
	var cs []*sseClient
	for range n {
		cs = append(cs, s.open(t, "/rooms/close/events"))
	}
	for _, c := range cs {
		c.waitCount(t, n)
	}
	stalled, err := s.h2.RoundTrip(mustRequest(t, s.URL+"/rooms/close/events"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stalled.Body.Close() }) // never read before
	// Quiet, longer than the write timeout plus the heartbeat.
	quiet := dlWriteTimeout + dlHeartbeat + dlWriteTimeout/2
	stayOpen(t, cs[0], quiet, "first quiet")
	// Changes, one publish each, until the stalled stream's window is
	// full and its write stalls past the timeout.
	for i := range extras {
		s.open(t, "/rooms/close/events")
		cs[n-1].waitCount(t, n+2+i)
	}
	waitUntil(t, 10*time.Second, "the stalled stream to be evicted", func() bool {
		return s.disconnects(t, "evicted") == 1
	})
	stayOpen(t, cs[0], quiet, "second quiet")
	for i, c := range cs {
		select {
		case <-c.done:
			t.Fatalf("stream %d ended before its client closed it: %v", i, c.err)
		default:
		}
	}

	// Half close their streams, then the connection goes with the rest
	// (and the extras).
	for _, c := range cs[:n/2] {
		c.Close()
	}
	waitUntil(t, 5*time.Second, "the closed streams to leave", func() bool {
		return s.metric(t, "presence_streams_open") == n/2+extras
	})
	s.mu.Lock()
	for _, c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	waitUntil(t, 5*time.Second, "every stream to leave", func() bool {
		return s.metric(t, "presence_streams_open") == 0
	})
	if got := s.disconnects(t, "evicted"); got != 1 {
		t.Errorf("%v streams counted evicted, want 1 (the stalled one)", got)
	}
	if got := s.disconnects(t, "client"); got != n+extras {
		t.Errorf("%v streams counted client, want %d", got, n+extras)
	}
}

func mustRequest(t *testing.T, url string) *http.Request {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// pausingConn is a client's connection that stops reading while paused,
// as a frozen client would: the server's writes fill the socket buffers.
type pausingConn struct {
	net.Conn
	paused *atomic.Bool
}

func (c pausingConn) Read(p []byte) (int, error) {
	for c.paused.Load() {
		time.Sleep(10 * time.Millisecond)
	}
	return c.Conn.Read(p)
}

// An HTTP/2 client that stops reading its whole connection is cut off soon
// after the write timeout, and counted evicted: its streams' deadlines
// fire, but resetting a stream takes a frame the connection cannot carry,
// so the connection itself must go. (TCP_USER_TIMEOUT, set long here,
// would otherwise be all that ends it.)
func TestHTTP2ConnectionThatStopsReadingIsCut(t *testing.T) {
	t.Parallel()
	const writeTimeout, tcpUserTimeout = 300 * time.Millisecond, 30 * time.Second
	s := startProto(t, "http2", "--window", "10ms", "--heartbeat", "5ms",
		"--write-timeout", writeTimeout.String(), "--tcp-user-timeout", tcpUserTimeout.String())
	var paused atomic.Bool
	tr := &http.Transport{
		TLSClientConfig:   s.h2.TLSClientConfig,
		ForceAttemptHTTP2: true,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			// A small receive buffer fills at once.
			d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
				return c.Control(func(fd uintptr) {
					_ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 1024)
				})
			}}
			c, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return pausingConn{c, &paused}, nil
		},
	}
	t.Cleanup(func() { paused.Store(false); tr.CloseIdleConnections() })
	frozen, err := tr.RoundTrip(mustRequest(t, s.URL+"/rooms/frozen/events"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { frozen.Body.Close() })
	paused.Store(true)
	start := time.Now()

	obs := s.open(t, "/rooms/frozen/events") // a reader on another connection
	obs.waitCount(t, 2)
	// The frozen connection is cut: within the write timeout, TLS's close
	// (which waits up to 5s to send its alert) and a margin, well before
	// TCP_USER_TIMEOUT.
	waitUntil(t, tcpUserTimeout/2, "the frozen connection's stream to be evicted", func() bool {
		return s.disconnects(t, "evicted") == 1
	})
	obs.waitCount(t, 1)
	t.Logf("frozen HTTP/2 connection cut after %s", time.Since(start).Round(time.Millisecond))
	select {
	case <-obs.done:
		t.Fatalf("the reader's stream ended: %v", obs.err)
	default:
	}
}
