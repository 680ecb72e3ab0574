package main

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestGracefulShutdownEndsStreams(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		s := startServer(t, "--engine", engine, "--drain", "5s")
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
	})
}

// The built binary, signalled like a container runtime would, exits 0.
func TestSIGTERMExitsZero(t *testing.T) {
	t.Parallel()
	bin := filepath.Join(t.TempDir(), "presence")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "--addr", "127.0.0.1:0", "--drain", "3s")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		cmd.Process.Kill()
		t.Fatalf("no listening line: %v", err)
	}
	addr := strings.TrimSpace(strings.TrimPrefix(line, "presence listening on http://"))
	s := &testServer{Addr: addr, URL: "http://" + addr}
	c := dial(t, s, "/events")
	c.waitCount(t, 1)

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit: %v", err)
		}
	case <-time.After(5 * time.Second):
		cmd.Process.Kill()
		t.Fatal("did not exit within the drain time")
	}
	c.waitEnd(t, time.Second)
}
