package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A client that stops reading (alive, its TCP window full) must delay no one
// else, pin little memory, and be cut off once its writes stall.
func TestStalledClientIsCutOffAndDelaysNoOne(t *testing.T) {
	t.Parallel()
	s := startServer(t, "--window", "10ms", "--heartbeat", "20ms", "--write-timeout", "300ms")
	obs := dial(t, s, "/rooms/stall/events")
	obs.waitCount(t, 1)

	stuck := dialStalled(t, s, "/rooms/stall/events")
	obs.waitCount(t, 2)

	// Churn the room so that events keep coming, and check that each
	// change reaches the observer quickly, until the stalled one is gone.
	maxQueued, worst := 0, time.Duration(0)
	samples, found := 0, 0 // to tell a socket never seen from a queue never filled
	deadline := time.Now().Add(60 * time.Second)
	for {
		if time.Now().After(deadline) {
			t.Fatalf("stalled client not cut off within 60s (kernel queue up to %d bytes)", maxQueued)
		}
		// The queue is sampled while waiting too: on a busy machine one
		// round can outlast the write timeout.
		sample := func() {
			q, ok := sendQueue(t, stuck)
			samples++
			if ok {
				found++
			}
			if ok && q > maxQueued {
				maxQueued = q
			}
		}
		c := dial(t, s, "/rooms/stall/events")
		start := time.Now()
		obs.waitFor(t, 5*time.Second, "join seen", func() bool {
			sample()
			n := obs.Last()
			return n == 3 || n == 2 && evicted(t, s) // with or without the stalled one
		})
		c.Close()
		if d := time.Since(start); d > worst {
			worst = d
		}
		sample()
		if evicted(t, s) {
			break
		}
	}
	obs.waitCount(t, 1) // the stalled client left the count
	if worst > time.Second {
		t.Errorf("a join took %s to reach the observer while a client was stalled", worst)
	}
	// net/http buffers at most 4 KiB + 2 KiB per response in user space.
	if pinned := maxQueued + 6<<10; pinned > 32<<10 {
		t.Errorf("stalled stream pinned up to %d bytes (kernel %d), want at most 32 KiB", pinned, maxQueued)
	}
	if maxQueued == 0 {
		t.Errorf("never saw the stalled socket's queue: the test did not stall it")
	}
	t.Logf("kernel send queue of the stalled stream peaked at %d bytes (socket found in %d of %d samples); worst join latency %s", maxQueued, found, samples, worst)
}

func evicted(t *testing.T, s *testServer) bool {
	return metric(t, s, `presence_disconnects_total{reason="evicted"}`) >= 1
}

// sendQueue reads from /proc's net/tcp how many bytes the server's end of
// the client's conn holds unsent or unacknowledged.
func sendQueue(t *testing.T, conn net.Conn) (int, bool) {
	t.Helper()
	f, err := os.Open("/proc/net/tcp") // the service's sockets: it runs in this network namespace
	if err != nil {
		t.Fatalf("reading socket queues: %v", err)
	}
	defer f.Close()
	local := fmt.Sprintf(":%04X", conn.RemoteAddr().(*net.TCPAddr).Port) // the server's port
	remote := fmt.Sprintf(":%04X", conn.LocalAddr().(*net.TCPAddr).Port)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 || !strings.HasSuffix(fields[1], local) || !strings.HasSuffix(fields[2], remote) {
			continue
		}
		tx, _, _ := strings.Cut(fields[4], ":")
		n, err := strconv.ParseInt(tx, 16, 64)
		return int(n), err == nil
	}
	return 0, false
}

// A reader that stops reading may be cut by the kernel before any write
// stalls for the whole write timeout: TCP_USER_TIMEOUT also ends a
// connection whose window stays shut that long. It stalled all the same,
// and is counted as evicted, not as a client that went away.
func TestReaderCutByUserTimeoutIsEvicted(t *testing.T) {
	// A write timeout far longer than the test, so that only the kernel's
	// user timeout (1 s) can cut the stalled reader.
	s := startServer(t, "--window", "10ms", "--heartbeat", "20ms", "--write-timeout", "2m", "--tcp-user-timeout", "1s")
	obs := dial(t, s, "/rooms/shut/events")
	obs.waitCount(t, 1)
	dialStalled(t, s, "/rooms/shut/events")
	obs.waitCount(t, 2)
	// Heartbeats every 20 ms fill the stalled reader's window and then
	// the server's send buffer; churn adds count events.
	churn := 0
	deadline := time.Now().Add(60 * time.Second)
	for !evicted(t, s) {
		if time.Now().After(deadline) {
			t.Fatal("the stalled reader was not cut within 60 s")
		}
		c := dial(t, s, "/rooms/shut/events")
		c.waitFor(t, 5*time.Second, "a first count", func() bool { return c.Last() > 0 })
		c.Close()
		churn++
	}
	obs.waitCount(t, 1)
	// Every other stream that ended was the churn's, closed by its client.
	waitUntil(t, 5*time.Second, "the churn's closes counted", func() bool {
		return metric(t, s, `presence_disconnects_total{reason="client"}`) == float64(churn)
	})
	if n := metric(t, s, `presence_disconnects_total{reason="evicted"}`); n != 1 {
		t.Errorf("evicted = %v, want 1 (the stalled reader)", n)
	}
}

// dialStalled opens a stream of path that never reads, with a tiny receive
// buffer, and closes it when the test ends.
func dialStalled(t *testing.T, s *testServer, path string) net.Conn {
	t.Helper()
	d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		return c.Control(func(fd uintptr) {
			_ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 1024)
		})
	}}
	stuck, err := d.Dial("tcp", s.Addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stuck.Close() })
	if _, err := io.WriteString(stuck, "GET "+path+" HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	return stuck
}
