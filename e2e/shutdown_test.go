package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestGracefulShutdownEndsStreams(t *testing.T) {
	t.Parallel()
	s := startServer(t, "--drain", "5s")
	var clients []*sseClient
	for _, tc := range []struct {
		room  string
		count int
	}{{"a", 1}, {"a", 2}, {"b", 1}} {
		c := dial(t, s, "/rooms/"+tc.room+"/events")
		c.waitCount(t, tc.count)
		clients = append(clients, c)
	}
	start := time.Now()
	if err := s.Stop(t); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("shutdown took %s, drain is 5s", d)
	}
	for _, c := range clients {
		c.waitEnd(t, time.Second) // closed by the server, so clients reconnect
	}
}

// The built binary, signalled like a container runtime would, exits 0.
func TestSIGTERMExitsZero(t *testing.T) {
	t.Parallel()
	n := startServer(t, "--drain", "3s")
	c := dial(t, n, "/events")
	c.waitCount(t, 1)

	if err := n.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-n.done:
		if err := n.exitErr(); err != nil {
			t.Fatalf("exited with %v, want status 0", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("did not exit within the drain time")
	}
	c.waitEnd(t, time.Second)
}

// A node with thousands of streams open, on the path where the service
// holds their connections itself, ends every one of them on SIGTERM (so
// that their clients reconnect elsewhere) and exits 0 within the drain.
func TestShutdownWithThousandsOfStreams(t *testing.T) {
	t.Parallel()
	const n = 3000
	s := startServer(t, "--drain", "5s", "--max-streams", "10000")
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := range n {
		c, err := net.Dial("tcp", s.Addr)
		if err != nil {
			t.Fatalf("stream %d: %v", i, err)
		}
		conns = append(conns, c)
		if _, err := fmt.Fprintf(c, "GET /rooms/r%d/events HTTP/1.1\r\nHost: x\r\n\r\n", i%10); err != nil {
			t.Fatal(err)
		}
	}
	// Every stream got its head and first count.
	readers := make([]*bufio.Reader, n)
	for i, c := range conns {
		readers[i] = bufio.NewReader(c)
		_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
		for {
			line, err := readers[i].ReadString('\n')
			if err != nil {
				t.Fatalf("stream %d before its first count: %v", i, err)
			}
			if strings.HasPrefix(line, "data: ") {
				break
			}
		}
	}
	waitStreamsOpen(t, s, n)

	start := time.Now()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for i, r := range readers {
		_ = conns[i].SetReadDeadline(start.Add(5 * time.Second))
		if _, err := io.Copy(io.Discard, r); err != nil {
			t.Fatalf("stream %d was not closed within the drain time: %v", i, err)
		}
	}
	if err := s.exit(t, 5*time.Second-time.Since(start)); err != nil {
		t.Fatalf("exited with %v, want status 0", err)
	}
	t.Logf("%d streams closed and the process gone %s after SIGTERM", n, time.Since(start).Round(time.Millisecond))
}

// waitStreamsOpen waits until the node's presence_streams_open metric
// says n.
func waitStreamsOpen(t *testing.T, s *testServer, n int) {
	t.Helper()
	want := fmt.Sprintf("\npresence_streams_open %d\n", n)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		resp, err := http.Get(s.URL + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if strings.Contains(string(body), want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("presence_streams_open never reached %d", n)
		}
	}
}
