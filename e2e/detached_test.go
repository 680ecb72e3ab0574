package e2e

import (
	"net"
	"testing"
	"time"
)

// Over plain HTTP/1.1 the service holds a stream's connection itself,
// with a goroutine blocked in a read: a client that closes its connection
// (FIN) or resets it (RST) leaves the room at once, counted as a client
// that went away, never as evicted.
func TestClientCloseAndResetLeaveAtOnce(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	obs := dial(t, s, "/rooms/bye/events")
	obs.waitCount(t, 1)
	closer := dial(t, s, "/rooms/bye/events")
	resetter := dial(t, s, "/rooms/bye/events")
	obs.waitCount(t, 3)

	start := time.Now()
	closer.Close()
	obs.waitCount(t, 2)
	tc, ok := resetter.conn.(*net.TCPConn)
	if !ok {
		t.Fatalf("conn is a %T", resetter.conn)
	}
	if err := tc.SetLinger(0); err != nil { // Close sends RST
		t.Fatal(err)
	}
	resetter.Close()
	obs.waitCount(t, 1)
	if took := time.Since(start); took > time.Second {
		t.Errorf("the close and the reset were seen after %s", took)
	}
	waitUntil(t, 5*time.Second, "two client disconnects", func() bool {
		return metric(t, s, `presence_disconnects_total{reason="client"}`) == 2
	})
	if n := metric(t, s, `presence_disconnects_total{reason="evicted"}`); n != 0 {
		t.Errorf("evicted = %v, want 0", n)
	}
}
