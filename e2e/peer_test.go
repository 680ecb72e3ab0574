package e2e

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// peerEnv, set to an address, makes the test binary a peer (peerMain)
// rather than run tests: a test starts it inside a network namespace with
// ip netns exec, so that this process never changes namespace.
const peerEnv = "PRESENCE_E2E_PEER"

// peerMain opens a stream of /events at addr (over TLS if it begins with
// tls://), prints the status line, and holds the stream until its standard
// input closes or it is killed.
func peerMain(addr string) int {
	var conn net.Conn
	var err error
	if a, ok := strings.CutPrefix(addr, "tls://"); ok {
		addr = a
		// The peer checks no certificate: the test's own, for its server.
		conn, err = tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
	} else {
		conn, err = net.DialTimeout("tcp", addr, 5*time.Second)
	}
	if err != nil {
		fmt.Println("dial:", err)
		return 1
	}
	defer conn.Close()
	if _, err := fmt.Fprintf(conn, "GET /events HTTP/1.1\r\nHost: %s\r\n\r\n", addr); err != nil {
		fmt.Println("write:", err)
		return 1
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		fmt.Println("read:", err)
		return 1
	}
	fmt.Print(line)
	_, _ = io.Copy(io.Discard, os.Stdin)
	return 0
}

// peer is a peerMain process in a network namespace, holding one stream.
type peer struct {
	cmd  *exec.Cmd
	done chan struct{}
}

// startPeer runs a peer in netns n that opens a stream of the service at
// addr (tls://host:port: over TLS), and waits for the status line, which
// must be 200.
func (n *testNetns) startPeer(t *testing.T, addr string) *peer {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	p := &peer{cmd: exec.Command("ip", "netns", "exec", n.name, self), done: make(chan struct{})}
	p.cmd.Env = append(os.Environ(), peerEnv+"="+addr)
	p.cmd.Stderr = os.Stderr
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdin, err := p.cmd.StdinPipe() // held open: the peer waits on it
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("ip netns exec: %v", err)
	}
	t.Cleanup(func() { stdin.Close(); p.kill() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	go func() {
		_, _ = io.Copy(io.Discard, stdout)
		_ = p.cmd.Wait()
		close(p.done)
	}()
	if err != nil || !strings.Contains(line, " 200 ") {
		t.Fatalf("stream from the namespace: %q %v", line, err)
	}
	return p
}

// kill ends the peer at once: the kernel closes its socket, and sends a
// FIN if its network still carries one.
func (p *peer) kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}
