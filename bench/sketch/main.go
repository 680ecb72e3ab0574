// Command sketch is the floor (../floor) with net/http's per-connection
// state let go of: the lower bound of what an SSE stream can cost with the
// standard library alone. net/http accepts the connection and parses the
// request; the handler then hijacks the connection, writes the response head
// and the first count itself, and returns, so that net/http's goroutine, its
// buffers and its bookkeeping go. What stays per stream is the socket, one
// goroutine blocked in a 1-byte Read (so that a client's close or reset is
// seen at once) and an entry in the hub's set.
//
// One goroutine fans the count out, at most once per 100 ms tick as the
// floor does, with a non-blocking write per connection: a connection whose
// socket buffer is full is cut, never waited for. The body is delimited by
// the connection's close (no chunked framing). No heartbeat, no caps, no
// metrics, no draining: it is a yardstick, not the product.
//
//	sketch --addr 127.0.0.1:8091
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// head is the whole response head: the body ends with the connection.
const head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nConnection: close\r\n\r\n"

// stream is what the hub keeps of one hijacked connection.
type stream struct {
	conn *net.TCPConn
	raw  syscall.RawConn // for writes that never wait
	one  [1]byte         // the blocked Read's buffer
}

// write writes b at once or not at all: it reports false if the socket
// did not take all of b (its buffer full, or the peer gone).
func (s *stream) write(b []byte) bool {
	n, werr := 0, error(nil)
	err := s.raw.Write(func(fd uintptr) bool {
		n, werr = syscall.Write(int(fd), b)
		return true // never wait for the socket to become writable
	})
	return err == nil && werr == nil && n == len(b)
}

// hub holds the count and the open streams. mu orders a join's first
// write before any fan-out that includes the new stream.
type hub struct {
	mu      sync.Mutex
	count   int64
	streams map[*stream]struct{}
	closed  bool           // shutting down: no more joins
	holds   sync.WaitGroup // a goroutine per stream, until its connection ends
}

// join counts s, writes the response head and the current count to it,
// adds it to the set and counts its hold, which the caller must start; it
// reports false (and counts nothing) if the write failed or the hub is
// shutting down.
func (h *hub) join(s *stream) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return false
	}
	h.count++
	if !s.write(fmt.Appendf([]byte(head), "event: user count\ndata: %d\n\n", h.count)) {
		h.count--
		return false
	}
	h.streams[s] = struct{}{}
	h.holds.Add(1) // under mu: before closeAll, so before holds.Wait
	return true
}

// leave removes s if it is still in the set, and closes it.
func (h *hub) leave(s *stream) {
	h.mu.Lock()
	if _, ok := h.streams[s]; ok {
		delete(h.streams, s)
		h.count--
	}
	h.mu.Unlock()
	s.conn.Close()
}

// hold blocks in a 1-byte Read until the client closes or resets the
// connection (or the fan-out cut it), then removes the stream.
func (h *hub) hold(s *stream) {
	defer h.leave(s)
	for {
		if _, err := s.conn.Read(s.one[:]); err != nil {
			return
		}
	}
}

// broadcast writes the count to every stream at most once per tick, when
// it changed. The set is copied under the lock and written outside it, so
// joins and leaves never wait for a fan-out; a stream that joins after the
// copy wrote the newer count itself. A stream whose socket does not take
// the event is closed, which ends its hold.
func (h *hub) broadcast(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	last := int64(-1)
	var targets []*stream // reused: the broadcaster owns it
	var msg []byte
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		h.mu.Lock()
		n := h.count
		if n != last {
			targets = targets[:0]
			for s := range h.streams {
				targets = append(targets, s)
			}
		}
		h.mu.Unlock()
		if n == last {
			continue
		}
		last = n
		msg = strconv.AppendInt(append(msg[:0], "event: user count\ndata: "...), n, 10)
		msg = append(msg, "\n\n"...)
		for _, s := range targets {
			if !s.write(msg) {
				s.conn.Close()
			}
		}
		clear(targets) // drop the references until the next fan-out
	}
}

// events hijacks the connection and hands it to the hub.
func (h *hub) events(w http.ResponseWriter, r *http.Request) {
	nc, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		http.Error(w, "hijacking unsupported", http.StatusInternalServerError)
		return
	}
	tc, ok := nc.(*net.TCPConn)
	if !ok {
		nc.Close()
		return
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		tc.Close()
		return
	}
	s := &stream{conn: tc, raw: raw}
	if !h.join(s) {
		tc.Close()
		return
	}
	go func() { // net/http's goroutine ends when this handler returns
		defer h.holds.Done()
		h.hold(s)
	}()
}

// closeAll refuses further joins and closes every stream's connection,
// which ends their holds.
func (h *hub) closeAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for s := range h.streams {
		s.conn.Close()
	}
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("sketch", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:8091", "listen address")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	return serve(ctx, ln)
}

// serve answers on ln until ctx ends, then closes the listener and every
// stream and returns once their goroutines have.
func serve(ctx context.Context, ln net.Listener) error {
	h := &hub{streams: map[*stream]struct{}{}}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var bg sync.WaitGroup
	defer bg.Wait()
	bg.Go(func() { h.broadcast(ctx, 100*time.Millisecond) })
	mux := http.NewServeMux()
	mux.HandleFunc("GET /events", h.events)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusOK)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	bg.Go(func() {
		<-ctx.Done()
		srv.Close() // hijacked streams are not the server's: closeAll ends them
	})
	err := srv.Serve(ln)
	cancel()
	h.closeAll()
	h.holds.Wait()
	if !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "sketch:", err)
		os.Exit(1)
	}
}
