package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/presence/presence/internal/redistest"
	"net"
	"net/http"
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

// A stream in a quiet room idles for much longer than the write timeout
// plus the heartbeat (and the leave grace) and stays open, receiving
// heartbeats, on both protocols; so do a stream that only watches the room
// and a room stream that also watches it; no stream is evicted.
func TestQuietStreamStaysOpen(t *testing.T) {
	t.Parallel()
	forEachProto(t, func(t *testing.T, proto string) {
		s := startProto(t, proto, append([]string{"--grace", "1s"}, dlArgs...)...)
		quietStreams(t, s, 0)
	})
}

// The same on a node of a cluster, quiet for more than three node
// timeouts as well: another node's person in the room still counts all
// along (its liveness and this node's view of it outlast the quiet), and
// the streams carry the changes after it.
func TestQuietStreamStaysOpenOnACluster(t *testing.T) {
	t.Parallel()
	forEachProto(t, func(t *testing.T, proto string) {
		srv := redistest.Start(t)
		cluster := []string{"--redis-url", srv.URL(), "--node-timeout", "2s"}
		other := startServer(t, append([]string{"--node-id", "other"}, cluster...)...)
		dial(t, other, "/rooms/quiet/events").waitCount(t, 1)
		s := startProto(t, proto, append(append([]string{"--grace", "1s", "--node-id", "quiet"}, cluster...), dlArgs...)...)
		quietStreams(t, s, 1)
	})
}

// quietStreams holds a room stream, a watch stream and a room stream that
// watches the room, in a room that holds `others` people of other nodes,
// quiet for 3 times the write timeout plus the heartbeat, and checks that
// they stay open, get heartbeats and then the next change.
func quietStreams(t *testing.T, s *protoServer, others int) {
	t.Helper()
	c := s.open(t, "/rooms/quiet/events")
	c.waitCount(t, 1+others)
	w := s.open(t, "/watch?rooms=quiet,empty")
	n := fmt.Sprintf("%d/%d", 1+others, 1+others)
	firstPresence(t, w, "quiet:"+n, "empty:0/0")
	r := s.open(t, "/rooms/other/events?watch=quiet")
	firstPresence(t, r, "other:1/1", "quiet:"+n)
	idle := 3 * (dlWriteTimeout + dlHeartbeat)
	stayOpen(t, c, idle, "quiet room")
	// Heartbeats came all along (a few may be late on a busy machine).
	for _, x := range []struct {
		c    *sseClient
		what string
	}{{c, "room stream"}, {w, "watch stream"}, {r, "room stream watching"}} {
		select {
		case <-x.c.done:
			t.Fatalf("%s ended while quiet (%v)", x.what, x.c.err)
		default:
		}
		if n, want := heartbeats(x.c), int(idle/dlHeartbeat)-2; n < want {
			t.Errorf("%s: %d heartbeats in %s, want at least %d", x.what, n, idle, want)
		}
	}
	if got := c.Last(); got != 1+others {
		t.Errorf("count %d after the quiet, want %d", got, 1+others)
	}
	// And the streams still carry changes.
	s.open(t, "/rooms/quiet/events")
	c.waitCount(t, 2+others)
	waitRoomPresence(t, w, "quiet", 2+others, 2+others)
	waitRoomPresence(t, r, "quiet", 2+others, 2+others)
	if n := s.disconnects(t, "evicted"); n != 0 {
		t.Errorf("%v streams evicted, want 0", n)
	}
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
	if got := s.disconnectsAtLeast(t, "client", n+extras); got != n+extras {
		t.Errorf("%v streams counted client, want %d", got, n+extras)
	}
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
