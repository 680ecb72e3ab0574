package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// reader is one real TCP client that reads an SSE stream and keeps the id
// of the last event, and the first event's data and arrival time.
type reader struct {
	conn    net.Conn
	opened  time.Time // request sent
	lastID  atomic.Int64
	bytes   atomic.Int64
	firstMu sync.Mutex
	first   string
	firstAt time.Time
	done    chan struct{} // closed when the stream ends
}

// dialer hands out loopback source addresses in turn (127.0.0.2 to .9), so
// that 15,000 connections and their TIME_WAIT never run out of ports.
type dialer struct{ n atomic.Uint32 }

func (d *dialer) dial(addr string, rcvbuf int) (net.Conn, error) {
	src := &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(2+d.n.Add(1)%8))}
	nd := net.Dialer{LocalAddr: src, Timeout: 10 * time.Second}
	if rcvbuf > 0 {
		nd.Control = func(_, _ string, c syscall.RawConn) error {
			var serr error
			err := c.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, rcvbuf)
				if serr == nil {
					// An Ethernet-sized segment, as over a real network:
					// loopback's 64 KiB one lets the server's send buffer
					// grow to 4 MiB before a write blocks.
					serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_MAXSEG, 1448)
				}
			})
			if err != nil {
				return err
			}
			return serr
		}
	}
	return nd.DialContext(context.Background(), "tcp", addr)
}

func request(path string) []byte {
	return []byte("GET " + path + " HTTP/1.1\r\nHost: bench\r\nAccept: text/event-stream\r\n\r\n")
}

// open connects a reader to path and starts reading once the response
// headers came (it returns then, or with the error).
func (d *dialer) open(addr, path string) (*reader, error) {
	c, err := d.dial(addr, 0)
	if err != nil {
		return nil, err
	}
	r := &reader{conn: c, opened: time.Now(), done: make(chan struct{})}
	r.lastID.Store(-1)
	if _, err := c.Write(request(path)); err != nil {
		c.Close()
		return nil, fmt.Errorf("write request: %w", err)
	}
	br := bufio.NewReaderSize(c, 4096)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("read response: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		c.Close()
		return nil, fmt.Errorf("status %d", resp.StatusCode)
	}
	go r.read(bufio.NewReaderSize(resp.Body, 4096))
	return r, nil
}

func (r *reader) read(br *bufio.Reader) {
	defer close(r.done)
	id := int64(-1)
	var data string
	for {
		line, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			// A long line (a padding comment or a member list): only its
			// field name matters here.
			long := "comment"
			if bytes.HasPrefix(line, []byte("data: ")) {
				long = "long data"
			}
			for err == bufio.ErrBufferFull {
				r.bytes.Add(int64(len(line)))
				line, err = br.ReadSlice('\n')
			}
			if long == "long data" {
				data = long
			}
			r.bytes.Add(int64(len(line)))
			continue
		}
		if err != nil {
			return
		}
		r.bytes.Add(int64(len(line)))
		switch {
		case bytes.HasPrefix(line, []byte("id: ")):
			id, _ = strconv.ParseInt(string(bytes.TrimSpace(line[4:])), 10, 64)
		case bytes.HasPrefix(line, []byte("data: ")):
			data = string(bytes.TrimSpace(line[6:]))
		case len(bytes.TrimSpace(line)) == 0:
			if data == "" {
				continue // a comment-only event
			}
			now := time.Now()
			r.firstMu.Lock()
			if r.firstAt.IsZero() {
				r.first, r.firstAt = data, now
			}
			r.firstMu.Unlock()
			r.lastID.Store(id)
			id, data = -1, ""
		}
	}
}

func (r *reader) firstEvent() (string, time.Time) {
	r.firstMu.Lock()
	defer r.firstMu.Unlock()
	return r.first, r.firstAt
}

// openMany opens n readers on path with a bounded number of dials at once.
func (d *dialer) openMany(addr, path string, n int) ([]*reader, error) {
	rs := make([]*reader, n)
	errs := make(chan error, n)
	sem := make(chan struct{}, 64)
	var wg sync.WaitGroup
	for i := range n {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			r, err := d.open(addr, path)
			if err != nil {
				errs <- err
				return
			}
			rs[i] = r
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		closeAll(rs)
		return nil, fmt.Errorf("open %d streams: %w", n, err)
	}
	return rs, nil
}

func closeAll(rs []*reader) {
	for _, r := range rs {
		if r != nil {
			r.conn.Close()
		}
	}
}

// stalled connects a client with a small receive buffer that sends its
// request and then never reads.
func (d *dialer) stalled(addr, path string) (net.Conn, error) {
	c, err := d.dial(addr, 4096)
	if err != nil {
		return nil, err
	}
	if _, err := c.Write(request(path)); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// minLastID is the lowest last event id among the readers: every reader has
// at least that event.
func minLastID(rs []*reader) int64 {
	m := int64(1 << 62)
	for _, r := range rs {
		m = min(m, r.lastID.Load())
	}
	return m
}
