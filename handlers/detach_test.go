package handlers

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http/httptest"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/goleak"
)

// detachServer is the service served as main.go does as far as detaching
// goes (ConnContext set, and the listener's connections Conns), over plain
// HTTP/1.1 or over TLS, on a listener whose sockets take sendBuffer bytes
// at most (0: the kernel's default).
type detachServer struct {
	addr   string
	b      *Broadcaster
	client *tls.Config // nil for plain HTTP
}

// detachingServer starts a detachServer over TLS or not. When the test
// ends, it stops the server and checks that no goroutine started since is
// left (goleak).
func detachingServer(t *testing.T, sendBuffer int, overTLS bool) *detachServer {
	t.Helper()
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) }) // runs after the cleanups below
	router, b := newTestRouter(t)
	srv := httptest.NewUnstartedServer(router)
	srv.Config.ConnContext = ConnContext
	srv.Listener = connListener{srv.Listener, sendBuffer}
	s := &detachServer{b: b}
	if overTLS {
		srv.StartTLS() // HTTP/1.1 only
		pool := x509.NewCertPool()
		pool.AddCert(srv.Certificate())
		s.client = &tls.Config{RootCAs: pool}
	} else {
		srv.Start()
	}
	s.addr = srv.Listener.Addr().String()
	t.Cleanup(srv.Close)
	return s
}

// forEachTransport runs test as subtests over plain HTTP/1.1 and over TLS.
func forEachTransport(t *testing.T, test func(t *testing.T, overTLS bool)) {
	for _, overTLS := range []bool{false, true} {
		name := "plain"
		if overTLS {
			name = "tls"
		}
		t.Run(name, func(t *testing.T) { test(t, overTLS) })
	}
}

// connListener hands out its connections as Conns, as main's listener
// does, with a send buffer of size bytes (0: the kernel's default).
type connListener struct {
	net.Listener
	size int
}

func (l connListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return c, err
	}
	if l.size > 0 {
		_ = tc.SetWriteBuffer(l.size)
	}
	return NewConn(tc), nil
}

// waitNoStreams waits, up to 5 s, for every stream to have left (what
// says which), and for the detached ones to be past their leaves.
func waitNoStreams(t *testing.T, b *Broadcaster, what string) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); b.hub.Stats().Streams != 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal(what)
		}
	}
	b.streams.Wait()
}

// waitGoroutines waits, up to 5 s, until at most want goroutines run
// besides the base ones: the handlers' and net/http's end just after a
// stream's first bytes went out.
func waitGoroutines(t *testing.T, base, want int, what string) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); runtime.NumGoroutine()-base > want; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d goroutines, want %d", what, runtime.NumGoroutine()-base, want)
		}
	}
}

// rawStream is a stream read over a bare TCP connection, or a bare TLS
// one.
type rawStream struct {
	conn net.Conn
	r    *bufio.Reader
}

// openRaw opens a stream at path on s, whose socket receives recvBuffer
// bytes at most (0: the kernel's default).
func openRaw(t *testing.T, s *detachServer, path string, recvBuffer int) *rawStream {
	t.Helper()
	d := &net.Dialer{}
	if recvBuffer > 0 {
		d.Control = func(_, _ string, c syscall.RawConn) error {
			return c.Control(func(fd uintptr) {
				_ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, recvBuffer)
			})
		}
	}
	var conn net.Conn
	var err error
	if s.client != nil {
		conn, err = tls.DialWithDialer(d, "tcp", s.addr, s.client)
	} else {
		conn, err = d.Dial("tcp", s.addr)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if _, err := fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: test\r\n\r\n", path); err != nil {
		t.Fatal(err)
	}
	return &rawStream{conn: conn, r: bufio.NewReader(conn)}
}

// waitLine reads until a line equal to want, within 5 s, and returns what
// it read.
func (s *rawStream) waitLine(t *testing.T, want string) string {
	t.Helper()
	_ = s.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	var sb strings.Builder
	for {
		line, err := s.r.ReadString('\n')
		sb.WriteString(line)
		if err != nil {
			t.Fatalf("waiting for %q: %v after %q", want, err, sb.String())
		}
		if strings.TrimRight(line, "\r\n") == want {
			return sb.String()
		}
	}
}

// waitEOF reads until the server closes the stream, within 5 s.
func (s *rawStream) waitEOF(t *testing.T) {
	t.Helper()
	_ = s.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		if _, err := s.r.ReadString('\n'); err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatal("the server did not close the stream")
			}
			return
		}
	}
}

// An HTTP/1.1 stream, plain or over TLS, keeps neither its handler's
// goroutine nor net/http's: one goroutine per stream, and a feed's per
// room. It gets its room's changes, leaves when its client goes, and ends
// at shutdown, with no goroutine left behind.
func TestDetachedStreamsHoldOneGoroutineEach(t *testing.T) {
	forEachTransport(t, func(t *testing.T, overTLS bool) {
		s := detachingServer(t, 0, overTLS)
		b := s.b

		base := runtime.NumGoroutine()
		const n = 200
		streams := make([]*rawStream, n)
		for i := range streams {
			streams[i] = openRaw(t, s, "/rooms/r/events", 0)
			head := streams[i].waitLine(t, fmt.Sprintf("data: %d", i+1))
			if !strings.HasPrefix(head, "HTTP/1.1 200 OK\r\n") || !strings.Contains(head, "Content-Type: text/event-stream\r\n") || !strings.Contains(head, "\r\nretry: 1000\n") {
				t.Fatalf("stream %d began %q", i, head)
			}
		}
		streams[0].waitLine(t, fmt.Sprintf("data: %d", n)) // the first saw everyone come
		waitGoroutines(t, base, n+1, fmt.Sprintf("%d streams: one each and the room's feed", n))

		for _, s := range streams[n/2:] {
			s.conn.Close()
		}
		streams[0].waitLine(t, fmt.Sprintf("data: %d", n/2))
		if got := counterValue(t, b.metrics.disconnect.WithLabelValues(reasonClient)); got != n/2 {
			t.Errorf("disconnects of reason client: %v, want %d", got, n/2)
		}

		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := b.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
		for _, s := range streams[:n/2] {
			s.waitEOF(t)
		}
		if got := counterValue(t, b.metrics.disconnect.WithLabelValues(reasonShutdown)); got != n/2 {
			t.Errorf("disconnects of reason shutdown: %v, want %d", got, n/2)
		}
		if s := b.hub.Stats().Streams; s != 0 {
			t.Errorf("%d streams counted after shutdown", s)
		}
	})
}

// A detached stream whose client stops reading is handed to a goroutine of
// its own when its socket fills, cut at the write timeout and counted as
// evicted; the room's other streams go on getting every write meanwhile.
func TestDetachedStalledReaderIsCut(t *testing.T) {
	forEachTransport(t, func(t *testing.T, overTLS bool) {
		s := detachingServer(t, 4096, overTLS) // write timeout 1 s
		b := s.b

		reader := openRaw(t, s, "/events", 0)
		reader.waitLine(t, "data: 1")
		stalled := openRaw(t, s, "/events", 4096) // never read again
		reader.waitLine(t, "data: 2")

		// Heartbeats until the stalled stream is cut: a few bytes each, many
		// times what both sockets' buffers hold, and the reader takes them all.
		evicted := b.metrics.disconnect.WithLabelValues(reasonEvicted)
		start := time.Now()
		beats := 0
		var read strings.Builder // what the reader got from here on
		for counterValue(t, evicted) == 0 {
			if time.Since(start) > 10*time.Second {
				t.Fatalf("the stalled stream was not cut within 10 s (%d heartbeats)", beats)
			}
			b.hub.Heartbeat()
			beats++
			read.WriteString(reader.waitLine(t, ": hb")) // the reader is never held up
		}
		if took := time.Since(start); took < time.Second {
			t.Errorf("cut after %s, before the write timeout", took)
		}
		// The stalled one left the room: the reader is told, perhaps already
		// while it waited for a heartbeat.
		if !strings.Contains(read.String(), "data: 1\n") {
			reader.waitLine(t, "data: 1")
		}
		stalled.waitEOF(t) // what its buffers held, then the close
		reader.conn.Close()
		waitNoStreams(t, b, "the reader's stream did not leave")
	})
}

// counterValue reads a counter's value.
func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// Line ends after a request are let pass, as servers do; a request
// pipelined behind a stream, or anything else, ends the stream.
func TestDetachedBytesAfterTheRequest(t *testing.T) {
	forEachTransport(t, func(t *testing.T, overTLS bool) {
		s := detachingServer(t, 0, overTLS)
		b := s.b

		kept := openRaw(t, s, "/events", 0)
		kept.waitLine(t, "data: 1")
		if _, err := kept.conn.Write([]byte("\r\n")); err != nil {
			t.Fatal(err)
		}
		piped := openRaw(t, s, "/events", 0)
		piped.waitLine(t, "data: 2")
		kept.waitLine(t, "data: 2")
		if _, err := piped.conn.Write([]byte("GET /events HTTP/1.1\r\nHost: test\r\n\r\n")); err != nil {
			t.Fatal(err)
		}
		piped.waitEOF(t)
		kept.waitLine(t, "data: 1") // the pipelining one left; the other stays
		kept.conn.Close()
		waitNoStreams(t, b, "the stream did not leave")
	})
}

// A detached GET /watch stream holds one goroutine, gets the first counts
// of its rooms, every change, the heartbeats, and ends at shutdown.
func TestDetachedWatchers(t *testing.T) {
	forEachTransport(t, func(t *testing.T, overTLS bool) {
		s := detachingServer(t, 0, overTLS)
		b := s.b

		base := runtime.NumGoroutine()
		const n = 50
		watchers := make([]*rawStream, n)
		for i := range watchers {
			watchers[i] = openRaw(t, s, "/watch?rooms=a,b", 0)
			watchers[i].waitLine(t, `data: {"room":"b","people":0,"connections":0}`)
		}
		waitGoroutines(t, base, n, fmt.Sprintf("%d watchers: one each", n))
		member := openRaw(t, s, "/rooms/b/events", 0)
		member.waitLine(t, "data: 1")
		for _, w := range watchers {
			w.waitLine(t, `data: {"room":"b","people":1,"connections":1}`)
		}
		b.hub.Heartbeat()
		for _, w := range watchers {
			w.waitLine(t, ": hb")
		}
		if s := b.hub.Stats().Streams; s != n+1 {
			t.Errorf("%d streams counted, want %d: a watcher counts as a stream, in no room", s, n+1)
		}

		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := b.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
		for _, w := range watchers {
			w.waitEOF(t)
		}
		member.waitEOF(t)
	})
}
