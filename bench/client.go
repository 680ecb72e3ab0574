package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http/httputil"
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
}

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
	now     func() int64 // ns since base
	onFirst func()       // first event arrived (state is now stOpen)
	onFail  func(kind int, err error, wasOpen bool)
}

// openTimeout bounds the time from dial to the first event.
const openTimeout = 15 * time.Second

// runClient dials addr from d, requests /events and reads the stream until it
// ends or is closed. It always calls exactly one of onFirst or onFail before
// the stream is open, and onFail later if the stream ends while open and was
// not closed by us.
func runClient(c *client, d *net.Dialer, addr string, h streamHooks) {
	opened := false
	fail := func(kind int, err error) {
		if c.state.CompareAndSwap(stPending, stFailed) {
			h.onFail(kind, err, false)
			return
		}
		if c.state.CompareAndSwap(stOpen, stFailed) {
			h.onFail(kind, err, true)
			return
		}
		// Closed by us: not a failure. If it never opened, still settle it.
		if !opened {
			h.onFail(-1, nil, false)
		}
	}
	nc, err := d.Dial("tcp", addr)
	if err != nil {
		fail(failDial, err)
		return
	}
	conn := nc.(*net.TCPConn)
	c.conn.Store(conn)
	defer conn.Close()
	if c.state.Load() == stClosed { // closed by us while dialing
		fail(-1, nil)
		return
	}
	conn.SetDeadline(time.Now().Add(openTimeout))
	req := "GET /events HTTP/1.1\r\nHost: " + addr + "\r\nAccept: text/event-stream\r\nCache-Control: no-cache\r\n\r\n"
	c.requestAt.Store(h.now())
	if _, err := io.WriteString(conn, req); err != nil {
		fail(failDial, err)
		return
	}
	br := bufio.NewReaderSize(conn, 512)
	body, kind, err := readResponseHead(br)
	if err != nil {
		if isTimeout(err) {
			kind = failTimeout
		}
		fail(kind, err)
		return
	}
	sse := newSSEReader(body)
	for {
		v, err := sse.next()
		if err != nil {
			kind := failEarlyEnd
			switch {
			case isTimeout(err):
				kind = failTimeout
			case errors.Is(err, errSSE):
				kind = failProto
			}
			fail(kind, err)
			return
		}
		now := h.now()
		if v != c.latest.Load() {
			c.changedAt.Store(now)
			c.latest.Store(v)
		}
		if !opened {
			c.firstAt.Store(now)
			conn.SetDeadline(time.Time{})
			if !c.state.CompareAndSwap(stPending, stOpen) {
				fail(-1, nil) // closed by us meanwhile
				return
			}
			opened = true
			h.onFirst()
		}
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// readResponseHead parses the status line and headers and returns the body
// reader (chunked decoding applied when the response is chunked).
func readResponseHead(br *bufio.Reader) (io.Reader, int, error) {
	tp := textproto.NewReader(br)
	line, err := tp.ReadLine()
	if err != nil {
		return nil, failEarlyEnd, err
	}
	proto, rest, ok := strings.Cut(line, " ")
	if !ok || !strings.HasPrefix(proto, "HTTP/1.") {
		return nil, failProto, fmt.Errorf("bad status line %q", line)
	}
	codeStr, _, _ := strings.Cut(rest, " ")
	code, err := strconv.Atoi(codeStr)
	if err != nil {
		return nil, failProto, fmt.Errorf("bad status line %q", line)
	}
	hdr, err := tp.ReadMIMEHeader()
	if err != nil {
		return nil, failProto, err
	}
	if code != 200 {
		return nil, failStatus, fmt.Errorf("status %d", code)
	}
	if ct := hdr.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		return nil, failProto, fmt.Errorf("content-type %q", ct)
	}
	te := strings.ToLower(strings.Join(hdr.Values("Transfer-Encoding"), ","))
	switch {
	case strings.Contains(te, "chunked"):
		return httputil.NewChunkedReader(br), 0, nil
	case te != "" && te != "identity":
		return nil, failProto, fmt.Errorf("transfer-encoding %q", te)
	case hdr.Get("Content-Length") != "":
		n, err := strconv.ParseInt(hdr.Get("Content-Length"), 10, 64)
		if err != nil || n < 0 {
			return nil, failProto, fmt.Errorf("bad content-length")
		}
		return io.LimitReader(br, n), 0, nil
	default: // delimited by connection close
		return br, 0, nil
	}
}

var errSSE = errors.New("sse")

// maxLine bounds one SSE line; longer lines are a protocol error.
const maxLine = 64 << 10

// sseReader parses an event stream (WHATWG HTML "event stream
// interpretation"): lines end in CRLF, LF or CR; lines starting with ':' are
// comments; "field: value" with one optional space after the colon; a blank
// line dispatches the event. Only events of type "user count" are returned.
type sseReader struct {
	r         *bufio.Reader
	skipLF    bool // last line ended with CR: drop a following LF
	started   bool // past a possible leading BOM
	line      []byte
	event     []byte
	data      []byte
	dataLines int
}

func newSSEReader(r io.Reader) *sseReader {
	return &sseReader{r: bufio.NewReaderSize(r, 512)}
}

func (s *sseReader) readLine() ([]byte, error) {
	s.line = s.line[:0]
	for {
		b, err := s.r.ReadByte()
		if err != nil {
			return nil, err
		}
		if s.skipLF {
			s.skipLF = false
			if b == '\n' {
				continue
			}
		}
		switch b {
		case '\n':
			return s.line, nil
		case '\r':
			s.skipLF = true
			return s.line, nil
		}
		if len(s.line) >= maxLine {
			return nil, fmt.Errorf("%w: line longer than %d bytes", errSSE, maxLine)
		}
		s.line = append(s.line, b)
	}
}

// next returns the value of the next "user count" event.
func (s *sseReader) next() (int64, error) {
	for {
		line, err := s.readLine()
		if err != nil {
			return 0, err
		}
		if !s.started {
			s.started = true
			line = bytes.TrimPrefix(line, []byte("\xef\xbb\xbf"))
		}
		if len(line) == 0 { // dispatch
			isCount := string(s.event) == "user count"
			has := s.dataLines > 0
			data := s.data
			s.event, s.data, s.dataLines = s.event[:0], s.data[:0], 0
			if !has || !isCount {
				continue
			}
			v, err := strconv.ParseInt(string(bytes.TrimSpace(data)), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("%w: bad user count data %q", errSSE, data)
			}
			return v, nil
		}
		if line[0] == ':' {
			continue
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
			s.event = append(s.event[:0], value...)
		case "data":
			if s.dataLines > 0 {
				s.data = append(s.data, '\n')
			}
			s.data = append(s.data, value...)
			s.dataLines++
		case "id", "retry":
			// Not needed: no reconnects here.
		}
	}
}
