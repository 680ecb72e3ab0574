package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Kinds of reading clients of the soak.
const (
	skLongH1  = iota // long-lived stream over HTTP/1.1 (TLS), one connection each
	skLongH2         // long-lived stream over HTTP/2, several to a connection like a browser's tabs
	skChurnH1        // short-lived stream over HTTP/1.1
	skChurnH2        // short-lived stream over HTTP/2, on a connection of its own
	numSoakKinds
)

var soakKindNames = [numSoakKinds]string{"long-h1", "long-h2", "churn-h1", "churn-h2"}

// soakClient is one reading stream of the soak. Its state uses the bench's
// client states: stPending until its first "user count", stOpen, then
// stFailed if it ended by itself or stClosed if we closed it.
type soakClient struct {
	kind     int
	room     int
	visitor  string       // 32 hex digits, or "" for an anonymous stream
	latest   atomic.Int64 // latest "user count", -1 before the first
	lastRead atomic.Int64 // ns since the soak's base, of the latest bytes read
	state    atomic.Int32
	timedOut atomic.Bool // the open timeout fired (HTTP/2, which has no deadline)

	mu     sync.Mutex
	closer func() // ends the stream; set once connected

	due time.Duration // churn only: churn-clock time at which it leaves
}

func newSoakClient(kind, room int, visitor string) *soakClient {
	c := &soakClient{kind: kind, room: room, visitor: visitor}
	c.latest.Store(-1)
	return c
}

// setCloser registers how to end the stream. It reports false if the client
// was closed meanwhile; the caller then ends the stream itself.
func (c *soakClient) setCloser(f func()) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state.Load() == stClosed {
		return false
	}
	c.closer = f
	return true
}

// close ends the stream on purpose and reports whether it was open (then
// the caller owns taking it off the roster).
func (c *soakClient) close() bool {
	wasOpen := c.state.CompareAndSwap(stOpen, stClosed)
	if !wasOpen {
		c.state.CompareAndSwap(stPending, stClosed)
	}
	c.mu.Lock()
	f := c.closer
	c.mu.Unlock()
	if f != nil {
		f()
	}
	return wasOpen
}

// soakOpenTimeout bounds the time from dial to a stream's first count.
// After that a stream has no read deadline (a quiet room sends only
// heartbeats); the sampler reports the longest silence instead.
const soakOpenTimeout = 15 * time.Second

// runH1 opens c over its own TLS connection with HTTP/1.1 and reads it
// until it ends or we close it. It is the goroutine of the stream.
func (s *soak) runH1(c *soakClient, d *net.Dialer) {
	defer s.clients.Done()
	nc, err := d.Dial("tcp", s.addr)
	if err != nil {
		s.ended(c, "dial", err)
		return
	}
	defer nc.Close()
	if !c.setCloser(func() { nc.Close() }) {
		s.ended(c, "", nil)
		return
	}
	nc.SetDeadline(time.Now().Add(soakOpenTimeout))
	tc := tls.Client(nc, s.tlsH1)
	if err := tc.Handshake(); err != nil {
		s.ended(c, "tls", err)
		return
	}
	req := "GET /rooms/" + soakRoom(c.room) + "/events HTTP/1.1\r\nHost: " + s.addr + "\r\nAccept: text/event-stream\r\nCache-Control: no-cache\r\n"
	if c.visitor != "" {
		req += "Cookie: presence_visitor=" + c.visitor + "\r\n"
	}
	req += "\r\n"
	if _, err := io.WriteString(tc, req); err != nil {
		s.ended(c, "request", err)
		return
	}
	br := bufio.NewReaderSize(tc, 1024)
	chunked, kind, err := readResponseHead(br)
	if err != nil {
		if isTimeout(err) {
			kind = failTimeout
		}
		s.ended(c, failNames[kind], err)
		return
	}
	s.readStream(c, br, &eventParser{chunked: chunked}, func() { nc.SetDeadline(time.Time{}) })
}

// runH2 opens c as a stream of tr's one HTTP/2 connection and reads it
// until it ends or we close it (which resets the stream: RST_STREAM CANCEL).
func (s *soak) runH2(c *soakClient, tr *http.Transport, closeConn bool) {
	defer s.clients.Done()
	if closeConn { // a connection of its own: close it with the stream
		defer tr.CloseIdleConnections()
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if !c.setCloser(cancel) {
		s.ended(c, "", nil)
		return
	}
	timer := time.AfterFunc(soakOpenTimeout, func() {
		if c.state.Load() == stPending {
			c.timedOut.Store(true)
			cancel()
		}
	})
	defer timer.Stop()
	req, err := http.NewRequestWithContext(ctx, "GET", "https://"+s.addr+"/rooms/"+soakRoom(c.room)+"/events", nil)
	if err != nil {
		s.ended(c, "dial", err)
		return
	}
	req.Header.Set("Accept", "text/event-stream")
	if c.visitor != "" {
		req.Header.Set("Cookie", "presence_visitor="+c.visitor)
	}
	resp, err := tr.RoundTrip(req)
	if err != nil {
		s.ended(c, "dial", err)
		return
	}
	defer resp.Body.Close()
	switch {
	case resp.ProtoMajor != 2:
		s.ended(c, "protocol", fmt.Errorf("%s, want HTTP/2", resp.Proto))
		return
	case resp.StatusCode != 200:
		s.ended(c, "status", fmt.Errorf("status %d", resp.StatusCode))
		return
	case !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream"):
		s.ended(c, "protocol", fmt.Errorf("content-type %q", resp.Header.Get("Content-Type")))
		return
	}
	s.readStream(c, resp.Body, &eventParser{}, nil)
}

// readStream reads c's body until it ends, marks c open at its first count
// (calling onOpen first), and settles it at the end.
func (s *soak) readStream(c *soakClient, r io.Reader, p *eventParser, onOpen func()) {
	buf := make([]byte, 1024)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			c.lastRead.Store(s.now())
			v, got, perr := p.feed(buf[:n])
			if got {
				c.latest.Store(v)
				if c.state.Load() == stPending {
					if onOpen != nil {
						onOpen()
					}
					if !c.state.CompareAndSwap(stPending, stOpen) {
						return // closed by us meanwhile
					}
					s.roster.add(c.room, c.visitor, 1)
				}
			}
			if perr != nil && err == nil {
				err = perr
			}
		}
		if err != nil {
			kind := disconnectKind(err)
			if c.timedOut.Load() {
				kind = "timeout"
			}
			s.ended(c, kind, err)
			return
		}
	}
}

// ended settles a stream that is over: a failed open, an unexpected
// disconnect of an open stream (taken off the roster), or nothing if we
// closed it.
func (s *soak) ended(c *soakClient, kind string, err error) {
	if c.state.CompareAndSwap(stPending, stFailed) {
		s.events.record(s.now(), c, false, kind, err)
		return
	}
	if c.state.CompareAndSwap(stOpen, stFailed) {
		s.roster.add(c.room, c.visitor, -1)
		s.events.record(s.now(), c, true, kind, err)
	}
}

// disconnectKind names why a stream ended, for the counts by kind.
func disconnectKind(err error) string {
	msg := err.Error()
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, errStreamEnd), errors.Is(err, io.ErrUnexpectedEOF):
		return "eof"
	case errors.Is(err, syscall.ECONNRESET):
		return "reset"
	case strings.Contains(msg, "stream error"): // an HTTP/2 RST_STREAM
		return "h2-reset"
	case strings.Contains(msg, "GOAWAY"), strings.Contains(msg, "connection lost"), strings.Contains(msg, "client connection"):
		return "h2-conn"
	case errors.Is(err, errSSE):
		return "protocol"
	case isTimeout(err):
		return "timeout"
	}
	return "other"
}

// soakEvents counts failed opens and unexpected disconnects, and keeps the
// first few in detail.
type soakEvents struct {
	mu          sync.Mutex
	disconnects [numSoakKinds]int
	openFails   [numSoakKinds]int
	byKind      map[string]int // "long-h2 disconnect h2-reset" -> n
	first       []soakEvent
}

// soakEvent is one failed open or unexpected disconnect.
type soakEvent struct {
	AtS    float64 `json:"at_s"`
	Client string  `json:"client"`
	Room   string  `json:"room"`
	What   string  `json:"what"` // disconnect or open-failed
	Kind   string  `json:"kind"`
	Error  string  `json:"error"`
}

const maxEventDetails = 40

func (e *soakEvents) record(now int64, c *soakClient, wasOpen bool, kind string, err error) {
	what := "open-failed"
	if wasOpen {
		what = "disconnect"
	}
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if wasOpen {
		e.disconnects[c.kind]++
	} else {
		e.openFails[c.kind]++
	}
	if e.byKind == nil {
		e.byKind = map[string]int{}
	}
	e.byKind[soakKindNames[c.kind]+" "+what+" "+kind]++
	if len(e.first) < maxEventDetails {
		e.first = append(e.first, soakEvent{AtS: secs(now), Client: soakKindNames[c.kind], Room: soakRoom(c.room), What: what, Kind: kind, Error: msg})
		if len(e.first) <= 5 {
			progress("  %s %s in %s: %s (%s)", soakKindNames[c.kind], what, soakRoom(c.room), kind, msg)
		}
	}
}

// counts returns the disconnects and failed opens so far, by client kind.
func (e *soakEvents) counts() (disc, fails [numSoakKinds]int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.disconnects, e.openFails
}

// roster is what the service should count: per room, its anonymous open
// streams (one person each) and its visitors' open streams (one person per
// visitor id).
type roster struct {
	mu    sync.Mutex
	rooms []rosterRoom
}

type rosterRoom struct {
	anon     int
	visitors map[string]int // open streams per visitor id
}

// tally is a room's people and streams.
type tally struct{ people, conns int }

func newRoster(rooms int) *roster {
	r := &roster{rooms: make([]rosterRoom, rooms)}
	for i := range r.rooms {
		r.rooms[i].visitors = map[string]int{}
	}
	return r
}

// add adds d (+1 or -1) open streams of visitor (or anonymous) to room.
func (r *roster) add(room int, visitor string, d int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rm := &r.rooms[room]
	if visitor == "" {
		rm.anon += d
		return
	}
	if n := rm.visitors[visitor] + d; n > 0 {
		rm.visitors[visitor] = n
	} else {
		delete(rm.visitors, visitor)
	}
}

// open reports whether visitor has an open stream in room.
func (r *roster) open(room int, visitor string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.rooms[room].visitors[visitor] > 0
}

// tallies returns each room's people and open streams.
func (r *roster) tallies() []tally {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]tally, len(r.rooms))
	for i, rm := range r.rooms {
		out[i] = tally{people: rm.anon + len(rm.visitors), conns: rm.anon}
		for _, n := range rm.visitors {
			out[i].conns += n
		}
	}
	return out
}

// stalledClient is a stream that never reads after its response head: its
// receive buffer is small, so the server's writes to it soon stall and the
// server must cut it. It is anonymous, in room 0.
type stalledClient struct {
	nc    net.Conn
	local netip.AddrPort
	cutAt atomic.Int64 // ns since base when seen cut; 0: not yet
	// missing counts consecutive socket-table reads without its socket.
	missing atomic.Int32
}

// stalledRcvBuf is the SO_RCVBUF asked for (the kernel doubles it).
const stalledRcvBuf = 4096

// openStalled opens a never-reading stream from src to room 0.
func (s *soak) openStalled(src net.IP) (*stalledClient, error) {
	d := newDialer(src)
	bindNoPort := d.Control
	d.Control = func(network, address string, rc syscall.RawConn) error {
		if err := bindNoPort(network, address, rc); err != nil {
			return err
		}
		var serr error
		err := rc.Control(func(fd uintptr) { // before connect, so the window starts small
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, stalledRcvBuf)
		})
		if err != nil {
			return err
		}
		return serr
	}
	nc, err := d.Dial("tcp", s.addr)
	if err != nil {
		return nil, err
	}
	nc.SetDeadline(time.Now().Add(soakOpenTimeout))
	tc := tls.Client(nc, s.tlsH1)
	req := "GET /rooms/" + soakRoom(0) + "/events HTTP/1.1\r\nHost: " + s.addr + "\r\nAccept: text/event-stream\r\n\r\n"
	if _, err := io.WriteString(tc, req); err != nil {
		nc.Close()
		return nil, err
	}
	if _, _, err := readResponseHead(bufio.NewReaderSize(tc, 512)); err != nil {
		nc.Close()
		return nil, err
	}
	nc.SetDeadline(time.Time{})
	local, err := netip.ParseAddrPort(nc.LocalAddr().String())
	if err != nil {
		nc.Close()
		return nil, err
	}
	// From here on nobody reads it.
	return &stalledClient{nc: nc, local: local}, nil
}
