package e2e

import (
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
