package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// A client whose network vanishes without a FIN or RST (a pulled cable)
// leaves the count within 30 s with default settings, over plain HTTP/1.1
// and over TLS. The client is a process in a network namespace of the
// test's own, joined to the server's by a veth pair, whose far end then
// goes down. (netem is not in this machine's kernel.) The two run one
// after the other: a namespace's name is the test process's.
func TestVanishedPeerLeavesWithin30s(t *testing.T) {
	t.Parallel()
	for _, proto := range []string{"http1", "https1"} {
		t.Run(proto, func(t *testing.T) {
			ns := newTestNetns(t)
			// Default heartbeat and TCP settings.
			s := startProto(t, proto, "--addr", ns.hostIP+":0")
			obs := s.open(t, "/events")
			obs.waitCount(t, 1)

			addr := s.Addr
			if proto == "https1" {
				addr = "tls://" + addr
			}
			p := ns.startPeer(t, addr) // a process in the namespace, holding a stream
			obs.waitCount(t, 2)

			ns.pullCable(t)
			p.kill() // its FIN goes nowhere
			start := time.Now()
			obs.waitFor(t, 30*time.Second, "the vanished peer to leave", func() bool { return obs.Last() == 1 })
			t.Logf("vanished peer left the count after %s", time.Since(start).Round(100*time.Millisecond))
			// Counted as the kernel cutting a peer that took nothing,
			// whether it reports ETIMEDOUT or the EHOSTUNREACH it saw
			// while it retried.
			if n := s.disconnectsAtLeast(t, "evicted", 1); n != 1 {
				t.Errorf("%v streams evicted, want 1: the vanished peer", n)
			}
		})
	}
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

// pullCable takes the namespace's end of the veth pair down: packets to it
// are dropped and nothing, not even a FIN, comes back, as with a pulled cable.
func (n *testNetns) pullCable(t *testing.T) {
	t.Helper()
	if out, err := exec.Command("ip", "-n", n.name, "link", "set", n.nsDev, "down").CombinedOutput(); err != nil {
		t.Fatalf("ip link set down: %v\n%s", err, out)
	}
}
