package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// Client states.
const (
	stPending int32 = iota // dialing, waiting for the first event
	stOpen                 // got its first event, stream open
	stFailed               // failed or ended by the server
	stClosed               // closed by us on purpose
)

// Failure kinds, counted per run.
const (
	failDial = iota
	failStatus
	failEarlyEnd
	failTimeout
	failProto
	numFail
)

var failNames = [numFail]string{"dial", "status", "ended", "timeout", "protocol"}

// client is one SSE stream. Times are nanoseconds since the run's base time.
type client struct {
	latest    atomic.Int64 // latest count received, -1 before the first event
	changedAt atomic.Int64 // when latest last changed value
	firstAt   atomic.Int64 // when the first event arrived
	requestAt atomic.Int64 // just before the request was written to the socket
	state     atomic.Int32
	conn      atomic.Pointer[net.TCPConn]
	polled    atomic.Pointer[polled] // set once a poller reads the stream
	id        int32                  // index in the run, unique per poller
	person    int32                  // visitor index of the "visitors" target; -1: anonymous
	path      string                 // request path and query; empty: /events
	hook      eventHook              // sees every event first; nil: only "user count" matters
}

// eventHook sees each dispatched event with data (the watch target's
// streams). Returning true makes the event count as the stream's news: the
// parser then reports a new value (one more than the last), which opens the
// stream and stamps changedAt, and skips its own "user count" handling.
type eventHook func(event, data []byte) (bool, error)

// closeByUs marks the client closed on purpose and closes its socket. It
// reports whether the client was open.
func (c *client) closeByUs() bool {
	wasOpen := c.state.CompareAndSwap(stOpen, stClosed)
	if !wasOpen {
		c.state.CompareAndSwap(stPending, stClosed)
	}
	if conn := c.conn.Load(); conn != nil {
		conn.Close()
	}
	if it := c.polled.Load(); it != nil {
		it.shutdown()
	}
	return wasOpen
}

// ipBindAddressNoPort is IP_BIND_ADDRESS_NO_PORT from linux/in.h. With it,
// binding a source address defers the choice of the local port to connect(),
// so a port is only unique per 4-tuple, not per source address.
const ipBindAddressNoPort = 24

func newDialer(src net.IP) *net.Dialer {
	return &net.Dialer{
		LocalAddr: &net.TCPAddr{IP: src},
		Timeout:   10 * time.Second,
		Control: func(_, _ string, rc syscall.RawConn) error {
			var serr error
			err := rc.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IP, ipBindAddressNoPort, 1)
			})
			if err != nil {
				return err
			}
			return serr
		},
	}
}

// streamHooks lets the owner of a client learn about it.
type streamHooks struct {
	now     func() int64    // ns since base
	onFirst func(c *client) // first event arrived (state is now stOpen)
	onFail  func(c *client, kind int, err error, wasOpen bool)
	onExit  func()  // the socket is closed for good; may be nil
	poller  *poller // reads the stream once open; nil: runClient does
}

// openTimeout bounds the time from dial to the first event.
const openTimeout = 15 * time.Second

// end settles a client whose stream is over: exactly one onFail before the
// stream is open, and one if it ends while open and was not closed by us.
func (c *client) end(h streamHooks, kind int, err error, opened bool) {
	if c.state.CompareAndSwap(stPending, stFailed) {
		h.onFail(c, kind, err, false)
		return
	}
	if c.state.CompareAndSwap(stOpen, stFailed) {
		h.onFail(c, kind, err, true)
		return
	}
	// Closed by us: not a failure. If it never opened, still settle it.
	if !opened {
		h.onFail(c, -1, nil, false)
	}
}

// saw records a count the client received at now.
func (c *client) saw(v, now int64) {
	if v != c.latest.Load() {
		c.changedAt.Store(now)
		c.latest.Store(v)
	}
}

// failKind classifies the error that ended a stream.
func failKind(err error) int {
	switch {
	case isTimeout(err):
		return failTimeout
	case errors.Is(err, errSSE):
		return failProto
	}
	return failEarlyEnd
}

// runClient dials addr from d, requests /events and reads the stream until
// its first event; then it hands the stream to h.poller, or, without one,
// reads it itself until it ends or is closed. It always calls exactly one of
// onFirst or onFail before the stream is open, onFail later if the stream
// ends while open and was not closed by us, and onExit once the socket is
// closed.
func runClient(c *client, d *net.Dialer, addr string, h streamHooks) {
	opened, adopted := false, false
	defer func() {
		if !adopted && h.onExit != nil {
			h.onExit()
		}
	}()
	nc, err := d.Dial("tcp", addr)
	if err != nil {
		c.end(h, failDial, err, false)
		return
	}
	conn := nc.(*net.TCPConn)
	c.conn.Store(conn)
	defer conn.Close()
	if c.state.Load() == stClosed { // closed by us while dialing
		c.end(h, -1, nil, false)
		return
	}
	conn.SetDeadline(time.Now().Add(openTimeout))
	path := c.path
	if path == "" {
		path = "/events"
	}
	req := "GET " + path + " HTTP/1.1\r\nHost: " + addr + "\r\nAccept: text/event-stream\r\nCache-Control: no-cache\r\n"
	if c.person >= 0 { // a browser tab: its visitor cookie
		req += fmt.Sprintf("Cookie: presence_visitor=%032x\r\n", c.person)
	}
	req += "\r\n"
	c.requestAt.Store(h.now())
	if _, err := io.WriteString(conn, req); err != nil {
		c.end(h, failDial, err, false)
		return
	}
	br := bufio.NewReaderSize(conn, 512)
	chunked, kind, err := readResponseHead(br)
	if err != nil {
		if isTimeout(err) {
			kind = failTimeout
		}
		c.end(h, kind, err, false)
		return
	}
	p := &eventParser{chunked: chunked, hook: c.hook}
	buf, _ := br.Peek(br.Buffered()) // body bytes read with the head
	var rbuf []byte                  // seldom needed: the first event nearly always comes with the head
	for {
		v, got, err := p.feed(buf)
		if got {
			now := h.now()
			c.saw(v, now)
			if !opened {
				c.firstAt.Store(now)
				conn.SetDeadline(time.Time{})
				if !c.state.CompareAndSwap(stPending, stOpen) {
					c.end(h, -1, nil, false) // closed by us meanwhile
					return
				}
				opened = true
				h.onFirst(c)
			}
		}
		if err != nil {
			c.end(h, failKind(err), err, opened)
			return
		}
		if opened && h.poller != nil {
			if adopted = h.poller.adopt(c, conn, p, h); adopted {
				return
			}
		}
		if rbuf == nil {
			rbuf = make([]byte, 512)
		}
		n, err := conn.Read(rbuf)
		if n == 0 && err != nil {
			c.end(h, failKind(err), err, opened)
			return
		}
		buf = rbuf[:n]
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// readResponseHead parses the status line and headers and reports whether
// the body is chunked (else it is delimited by the connection's close).
func readResponseHead(br *bufio.Reader) (bool, int, error) {
	tp := textproto.NewReader(br)
	line, err := tp.ReadLine()
	if err != nil {
		return false, failEarlyEnd, err
	}
	proto, rest, ok := strings.Cut(line, " ")
	if !ok || !strings.HasPrefix(proto, "HTTP/1.") {
		return false, failProto, fmt.Errorf("bad status line %q", line)
	}
	codeStr, _, _ := strings.Cut(rest, " ")
	code, err := strconv.Atoi(codeStr)
	if err != nil {
		return false, failProto, fmt.Errorf("bad status line %q", line)
	}
	hdr, err := tp.ReadMIMEHeader()
	if err != nil {
		return false, failProto, err
	}
	if code != 200 {
		return false, failStatus, fmt.Errorf("status %d", code)
	}
	if ct := hdr.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		return false, failProto, fmt.Errorf("content-type %q", ct)
	}
	te := strings.ToLower(strings.Join(hdr.Values("Transfer-Encoding"), ","))
	switch {
	case strings.Contains(te, "chunked"):
		return true, 0, nil
	case te != "" && te != "identity":
		return false, failProto, fmt.Errorf("transfer-encoding %q", te)
	case hdr.Get("Content-Length") != "":
		return false, failProto, errors.New("an event stream with a Content-Length")
	default: // delimited by connection close
		return false, 0, nil
	}
}

var errSSE = errors.New("sse")

// errStreamEnd reports the last chunk of a chunked body: the server ended
// the stream.
var errStreamEnd = errors.New("stream ended by the server")

// maxLine bounds one SSE line; longer lines are a protocol error.
const maxLine = 64 << 10

// Chunked framing states of eventParser.
const (
	csSize    = iota // reading the chunk size in hex
	csExt            // skipping chunk extensions up to the LF
	csData           // inside a chunk's data
	csDataEnd        // expecting the CRLF after a chunk's data
	csDone           // after the last chunk
)

// eventParser decodes a response body pushed to it in pieces of any size:
// HTTP/1.1 chunked framing when chunked is set, then the event stream
// (WHATWG HTML "event stream interpretation"): lines end in CRLF, LF or CR;
// lines starting with ':' are comments; "field: value" with one optional
// space after the colon; a blank line dispatches the event. Only events of
// type "user count" matter. Being push-based, it serves both the goroutine
// that opens a stream and the epoll loop that reads it afterwards.
type eventParser struct {
	chunked    bool
	cstate     int
	chunkLeft  int64
	sizeDigits int

	skipLF    bool // last line ended with CR: drop a following LF
	started   bool // past a possible leading BOM
	line      []byte
	event     []byte
	data      []byte
	dataLines int

	last int64 // value of the newest "user count" event of this feed
	got  bool  // whether this feed had one

	hook eventHook // nil: none
}

// feed parses b. It reports the value of the newest "user count" event
// completed in b, if any.
func (p *eventParser) feed(b []byte) (int64, bool, error) {
	p.got = false
	if !p.chunked {
		err := p.feedSSE(b)
		return p.last, p.got, err
	}
	for len(b) > 0 {
		switch p.cstate {
		case csSize:
			c := b[0]
			b = b[1:]
			switch {
			case '0' <= c && c <= '9', 'a' <= c && c <= 'f', 'A' <= c && c <= 'F':
				if p.sizeDigits >= 15 {
					return p.last, p.got, fmt.Errorf("%w: chunk size too long", errSSE)
				}
				p.chunkLeft = p.chunkLeft<<4 | int64(unhex(c))
				p.sizeDigits++
			case c == '\r' || c == ';' || c == ' ' || c == '\t':
				p.cstate = csExt
			case c == '\n':
				if err := p.endSize(); err != nil {
					return p.last, p.got, err
				}
			default:
				return p.last, p.got, fmt.Errorf("%w: bad chunk size byte %q", errSSE, c)
			}
		case csExt:
			c := b[0]
			b = b[1:]
			if c == '\n' {
				if err := p.endSize(); err != nil {
					return p.last, p.got, err
				}
			}
		case csData:
			n := min(int64(len(b)), p.chunkLeft)
			if err := p.feedSSE(b[:n]); err != nil {
				return p.last, p.got, err
			}
			b = b[n:]
			if p.chunkLeft -= n; p.chunkLeft == 0 {
				p.cstate = csDataEnd
			}
		case csDataEnd:
			c := b[0]
			b = b[1:]
			switch c {
			case '\n':
				p.cstate, p.sizeDigits = csSize, 0
			case '\r':
			default:
				return p.last, p.got, fmt.Errorf("%w: no CRLF after chunk data", errSSE)
			}
		case csDone:
			return p.last, p.got, errStreamEnd
		}
	}
	return p.last, p.got, nil
}

func (p *eventParser) endSize() error {
	if p.sizeDigits == 0 {
		return fmt.Errorf("%w: empty chunk size", errSSE)
	}
	if p.chunkLeft == 0 {
		p.cstate = csDone
		return errStreamEnd
	}
	p.cstate = csData
	return nil
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c >= 'a':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}

func (p *eventParser) feedSSE(b []byte) error {
	for _, c := range b {
		if p.skipLF {
			p.skipLF = false
			if c == '\n' {
				continue
			}
		}
		switch c {
		case '\n', '\r':
			p.skipLF = c == '\r'
			if err := p.endLine(); err != nil {
				return err
			}
			continue
		}
		if len(p.line) >= maxLine {
			return fmt.Errorf("%w: line longer than %d bytes", errSSE, maxLine)
		}
		p.line = append(p.line, c)
	}
	return nil
}

func (p *eventParser) endLine() error {
	line := p.line
	p.line = p.line[:0]
	if !p.started {
		p.started = true
		line = bytes.TrimPrefix(line, []byte("\xef\xbb\xbf"))
	}
	if len(line) == 0 { // dispatch
		isCount := string(p.event) == "user count"
		has := p.dataLines > 0
		data := p.data
		event := p.event
		p.event, p.data, p.dataLines = p.event[:0], p.data[:0], 0
		if has && p.hook != nil {
			news, err := p.hook(event, data)
			if err != nil {
				return fmt.Errorf("%w: %w", errSSE, err)
			}
			if news {
				p.last, p.got = p.last+1, true
				return nil
			}
		}
		if !has || !isCount {
			return nil
		}
		v, err := strconv.ParseInt(string(bytes.TrimSpace(data)), 10, 64)
		if err != nil {
			return fmt.Errorf("%w: bad user count data %q", errSSE, data)
		}
		p.last, p.got = v, true
		return nil
	}
	if line[0] == ':' {
		return nil
	}
	field, value := line, []byte(nil)
	if i := bytes.IndexByte(line, ':'); i >= 0 {
		field, value = line[:i], line[i+1:]
		if len(value) > 0 && value[0] == ' ' {
			value = value[1:]
		}
	}
	switch string(field) {
	case "event":
		p.event = append(p.event[:0], value...)
	case "data":
		if p.dataLines > 0 {
			p.data = append(p.data, '\n')
		}
		p.data = append(p.data, value...)
		p.dataLines++
	}
	return nil
}
