package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// testServer is the built service running as a process of its own, on a
// free port of 127.0.0.1 unless its args say otherwise.
type testServer struct {
	URL  string // http://host:port, or https:// with --tls-cert
	Addr string // host:port
	cmd  *exec.Cmd
	out  *lockedBuffer // its stdout and log: what an operator sees
	done chan struct{} // closed once it has exited
}

// startServer starts the service with args (after --addr 127.0.0.1:0 and
// --log-level warn, which args may override) and waits until it listens.
// The test's end stops it, unless the test did, with SIGTERM, and fails
// the test unless it then exits 0.
func startServer(t *testing.T, args ...string) *testServer {
	t.Helper()
	s := launch(t, args...)
	s.listening(t)
	return s
}

// launch starts the service with args without waiting for anything, for
// the tests of a service that must refuse to start.
func launch(t *testing.T, args ...string) *testServer {
	t.Helper()
	if serviceBinary == "" {
		t.Fatal("the service was not built (see TestMain)")
	}
	s := &testServer{out: &lockedBuffer{}, done: make(chan struct{})}
	s.cmd = exec.Command(serviceBinary, append([]string{"--addr", "127.0.0.1:0", "--log-level", "warn"}, args...)...)
	s.cmd.Env = serviceEnv()
	s.cmd.Stdout, s.cmd.Stderr = s.out, s.out
	// Killed with the test binary, should it die before its cleanups.
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start the service: %v", err)
	}
	go func() {
		_ = s.cmd.Wait()
		close(s.done)
	}()
	t.Cleanup(func() {
		select {
		case <-s.done: // ended by the test, which checked how
		default:
			if err := s.Stop(t); err != nil {
				t.Errorf("on SIGTERM the service exited with %v; output:\n%s", err, s.out)
				return
			}
		}
		if t.Failed() {
			t.Logf("the service's output:\n%s", s.out)
		}
	})
	return s
}

// serviceEnv is this process's environment without the service's own
// variables (PRESENCE_*), so that only a test's flags configure it.
func serviceEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PRESENCE_") {
			env = append(env, kv)
		}
	}
	return env
}

// listening waits until the service says it listens, and fills in its
// address; it fails if the service exits first.
func (s *testServer) listening(t *testing.T) {
	t.Helper()
	listeningLine := regexp.MustCompile(`presence listening on (\S+)\n`)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if m := listeningLine.FindStringSubmatch(s.out.String()); m != nil {
			s.URL = m[1]
			_, s.Addr, _ = strings.Cut(s.URL, "://")
			return
		}
		select {
		case <-s.done:
			t.Fatalf("the service exited before it listened: %v; output:\n%s", s.exitErr(), s.out)
		case <-time.After(5 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("the service did not listen within 10s; output:\n%s", s.out)
		}
	}
}

// Stop sends SIGTERM, as a container runtime would, waits for the service
// to exit, and returns its error (nil if it exited 0). Once it has exited,
// Stop only returns that error again.
func (s *testServer) Stop(t *testing.T) error {
	t.Helper()
	select {
	case <-s.done:
		return s.exitErr()
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
		return s.exitErr()
	case <-time.After(15 * time.Second):
		s.kill()
		t.Errorf("the service did not stop within 15s of SIGTERM; output:\n%s", s.out)
		return errors.New("killed after 15s")
	}
}

// kill ends the service as kill -9 would: no goodbye to anyone.
func (s *testServer) kill() {
	_ = s.cmd.Process.Kill()
	<-s.done
}

// exit waits for the service to exit by itself and returns its error.
func (s *testServer) exit(t *testing.T, within time.Duration) error {
	t.Helper()
	select {
	case <-s.done:
		return s.exitErr()
	case <-time.After(within):
		t.Fatalf("the service still runs after %v; output:\n%s", within, s.out)
		return nil
	}
}

// exitErr is nil if the service exited 0, else the error it printed
// ("presence: ..."), or its exit status if it printed none.
func (s *testServer) exitErr() error {
	if s.cmd.ProcessState.ExitCode() == 0 {
		return nil
	}
	lines := strings.Split(s.out.String(), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if msg, ok := strings.CutPrefix(lines[i], "presence: "); ok {
			return errors.New(msg)
		}
	}
	return fmt.Errorf("%v", s.cmd.ProcessState)
}

// lockedBuffer collects a process's output while tests read it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
