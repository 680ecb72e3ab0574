package main

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// sseClient is one stream to the sketch over real TCP.
type sseClient struct {
	conn net.Conn
	sc   *bufio.Scanner
}

func dialStream(t *testing.T, addr string) *sseClient {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Write([]byte("GET /events HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("status %d, content-type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if resp.ContentLength != -1 || len(resp.TransferEncoding) != 0 || !resp.Close {
		t.Fatalf("want a body delimited by the close: length %d, encoding %v, close %v", resp.ContentLength, resp.TransferEncoding, resp.Close)
	}
	return &sseClient{conn: conn, sc: bufio.NewScanner(resp.Body)}
}

// next returns the data of the next "user count" event.
func (c *sseClient) next(t *testing.T) int {
	t.Helper()
	event := ""
	for c.sc.Scan() {
		line := c.sc.Text()
		if v, ok := strings.CutPrefix(line, "event: "); ok {
			event = v
		}
		if v, ok := strings.CutPrefix(line, "data: "); ok && event == "user count" {
			n, err := strconv.Atoi(v)
			if err != nil {
				t.Fatalf("bad count %q", v)
			}
			return n
		}
	}
	t.Fatalf("stream ended: %v", c.sc.Err())
	return 0
}

// TestSketchCounts holds the sketch to the floor's observable job: the
// first count at once, every stream told of a join and of a close, and
// the streams ended when the server stops.
func TestSketchCounts(t *testing.T) {
	defer goleak.VerifyNone(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- serve(ctx, ln) }()
	addr := ln.Addr().String()

	a := dialStream(t, addr)
	defer a.conn.Close()
	if n := a.next(t); n != 1 {
		t.Fatalf("a's first count %d, want 1", n)
	}
	b := dialStream(t, addr)
	if n := b.next(t); n != 2 {
		t.Fatalf("b's first count %d, want 2", n)
	}
	if n := a.next(t); n != 2 {
		t.Fatalf("a after b joined: %d, want 2", n)
	}
	b.conn.Close()
	if n := a.next(t); n != 1 {
		t.Fatalf("a after b left: %d, want 1", n)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not return after its context ended")
	}
	for a.sc.Scan() { // the rest of the last event, then the end
		if a.sc.Text() != "" {
			t.Fatalf("a got %q after shutdown", a.sc.Text())
		}
	}
	if err := a.sc.Err(); err != nil {
		t.Fatalf("a not ended by the shutdown: %v", err)
	}
}
