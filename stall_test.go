package main

import (
	"bufio"
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
	forEachEngine(t, func(t *testing.T, engine string) {
		s := startServer(t, "--engine", engine, "--window", "10ms", "--heartbeat", "20ms", "--write-timeout", "300ms")
		obs := dial(t, s, "/rooms/stall/events")
		obs.waitCount(t, 1)

		// The stalled client: a tiny receive buffer, and it never reads.
		d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
			return c.Control(func(fd uintptr) {
				_ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 1024)
			})
		}}
		stuck, err := d.Dial("tcp", s.Addr)
		if err != nil {
			t.Fatal(err)
		}
		defer stuck.Close()
		if _, err := io.WriteString(stuck, "GET /rooms/stall/events HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		obs.waitCount(t, 2)
		serverPort := s.Addr[strings.LastIndex(s.Addr, ":")+1:]
		stuckPort := stuck.LocalAddr().(*net.TCPAddr).Port

		// Churn the room so that events keep coming, and check that each
		// change reaches the observer quickly, until the stalled one is gone.
		maxQueued, worst := 0, time.Duration(0)
		deadline := time.Now().Add(60 * time.Second)
		for {
			if time.Now().After(deadline) {
				t.Fatalf("stalled client not cut off within 60s (kernel queue up to %d bytes)", maxQueued)
			}
			// The queue is sampled while waiting too: on a busy machine one
			// round can outlast the write timeout.
			sample := func() {
				if q, ok := sendQueue(t, serverPort, stuckPort); ok && q > maxQueued {
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
		t.Logf("kernel send queue of the stalled stream peaked at %d bytes; worst join latency %s", maxQueued, worst)
	})
}

func evicted(t *testing.T, s *testServer) bool {
	return metric(t, s, `presence_disconnects_total{reason="evicted"}`) >= 1
}

// sendQueue reads from /proc/net/tcp how many bytes the server's socket to
// the given client port holds unsent or unacknowledged.
func sendQueue(t *testing.T, serverPort string, clientPort int) (int, bool) {
	t.Helper()
	f, err := os.Open("/proc/net/tcp")
	if err != nil {
		t.Fatalf("reading socket queues: %v", err)
	}
	defer f.Close()
	sp, _ := strconv.Atoi(serverPort)
	local := ":" + strings.ToUpper(strconv.FormatInt(int64(sp), 16))
	remote := ":" + strings.ToUpper(strconv.FormatInt(int64(clientPort), 16))
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 || !strings.HasSuffix(fields[1], padPort(local)) || !strings.HasSuffix(fields[2], padPort(remote)) {
			continue
		}
		tx, _, _ := strings.Cut(fields[4], ":")
		n, err := strconv.ParseInt(tx, 16, 64)
		return int(n), err == nil
	}
	return 0, false
}

func padPort(p string) string {
	return ":" + strings.Repeat("0", 5-len(p)) + p[1:]
}
