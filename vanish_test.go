package main

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// A client whose network vanishes without a FIN or RST (a pulled cable)
// leaves the count within 30 s with default settings. The client lives in a
// network namespace of the test's own, joined to the server by a veth pair,
// whose far end then goes down. (netem is not in this machine's kernel.)
func TestVanishedPeerLeavesWithin30s(t *testing.T) {
	t.Parallel()
	ns := newTestNetns(t)
	s := startServer(t, "--addr", ns.hostIP+":0") // default heartbeat and TCP settings
	obs := dial(t, s, "/events")
	obs.waitCount(t, 1)

	conn := ns.dial(t, s.Addr)
	defer conn.Close()
	fmt.Fprintf(conn, "GET /events HTTP/1.1\r\nHost: x\r\n\r\n")
	if line, err := bufio.NewReader(conn).ReadString('\n'); err != nil || !strings.Contains(line, "200") {
		t.Fatalf("stream from the namespace: %q %v", line, err)
	}
	obs.waitCount(t, 2)

	ns.pullCable(t)
	conn.Close() // its FIN goes nowhere
	start := time.Now()
	obs.waitFor(t, 30*time.Second, "the vanished peer to leave", func() bool { return obs.Last() == 1 })
	t.Logf("vanished peer left the count after %s", time.Since(start).Round(100*time.Millisecond))
}

type testNetns struct {
	name, hostDev, nsDev, hostIP, nsIP string
}

// newTestNetns makes a namespace with a veth pair to this one, removed at
// the end of the test. It needs root and iproute2; without them the test
// skips, unless PRESENCE_REQUIRE_NETNS=1 (set by .ci/run) makes it fail.
func newTestNetns(t *testing.T) *testNetns {
	t.Helper()
	missing := ""
	if os.Geteuid() != 0 {
		missing = "root"
	} else if _, err := exec.LookPath("ip"); err != nil {
		missing = "ip (iproute2)"
	}
	if missing != "" {
		if os.Getenv("PRESENCE_REQUIRE_NETNS") == "1" {
			t.Fatalf("network namespace tests need %s", missing)
		}
		t.Skipf("network namespace tests need %s; set PRESENCE_REQUIRE_NETNS=1 to fail instead", missing)
	}
	id := os.Getpid() % 250
	n := &testNetns{
		name:    fmt.Sprintf("prs-test-%d", os.Getpid()),
		hostDev: fmt.Sprintf("prs%dh", os.Getpid()%100000),
		nsDev:   fmt.Sprintf("prs%dn", os.Getpid()%100000),
		hostIP:  fmt.Sprintf("10.251.%d.1", id),
		nsIP:    fmt.Sprintf("10.251.%d.2", id),
	}
	t.Cleanup(func() {
		_ = exec.Command("ip", "link", "del", n.hostDev).Run()
		_ = exec.Command("ip", "netns", "del", n.name).Run()
	})
	for _, args := range [][]string{
		{"netns", "add", n.name},
		{"link", "add", n.hostDev, "type", "veth", "peer", "name", n.nsDev},
		{"link", "set", n.nsDev, "netns", n.name},
		{"addr", "add", n.hostIP + "/30", "dev", n.hostDev},
		{"link", "set", n.hostDev, "up"},
		{"-n", n.name, "addr", "add", n.nsIP + "/30", "dev", n.nsDev},
		{"-n", n.name, "link", "set", n.nsDev, "up"},
		{"-n", n.name, "link", "set", "lo", "up"},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	return n
}

// dial connects to addr from inside the namespace: the socket is made on a
// thread that joined the namespace, and keeps it.
func (n *testNetns) dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	type result struct {
		c   net.Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		// The thread stays locked and so dies with this goroutine, never
		// going back to the pool in the other namespace.
		runtime.LockOSThread()
		f, err := os.Open("/run/netns/" + n.name)
		if err != nil {
			ch <- result{err: err}
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			ch <- result{err: fmt.Errorf("setns: %w", err)}
			return
		}
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		ch <- result{c, err}
	}()
	r := <-ch
	if r.err != nil {
		t.Fatalf("dial from namespace: %v", r.err)
	}
	return r.c
}

// pullCable takes the namespace's end of the veth pair down: packets to it
// are dropped and nothing, not even a FIN, comes back, as with a pulled cable.
func (n *testNetns) pullCable(t *testing.T) {
	t.Helper()
	if out, err := exec.Command("ip", "-n", n.name, "link", "set", n.nsDev, "down").CombinedOutput(); err != nil {
		t.Fatalf("ip link set down: %v\n%s", err, out)
	}
}
