// Package redistest runs a real redis-server for tests: on a free port of
// 127.0.0.1, in a temporary directory, without persistence, stopped when
// the test ends. Tests can stop and restart it (it comes back empty, as
// after a crash that lost its data) to exercise outages.
package redistest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/presence/presence/internal/resp"
)

// RequireEnv, set to 1, turns a missing redis-server from a skip into a
// failure; .ci/run sets it.
const RequireEnv = "PRESENCE_REQUIRE_REDIS"

// Server is one redis-server process (or none, while stopped).
type Server struct {
	t    testing.TB
	bin  string
	dir  string
	Port int
	// Args are more redis-server options for the next Restart, say
	// "--user", "presence", "on", ">secret", "~*", "&*", "+@all".
	Args []string
	cmd  *exec.Cmd
	done chan struct{}
}

// Start starts redis-server, or skips the test with a clear message if it
// is not installed (fails instead when RequireEnv is 1).
func Start(t testing.TB) *Server {
	t.Helper()
	s := Reserve(t)
	s.Restart()
	return s
}

// Reserve is Start without the start: a Server on a free port where no
// Redis answers yet, for tests of a service that starts before its Redis.
// Restart starts it.
func Reserve(t testing.TB) *Server {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		msg := "redis-server is not installed (Debian: apt-get install -y redis-server)"
		if os.Getenv(RequireEnv) == "1" {
			t.Fatalf("%s, and %s=1", msg, RequireEnv)
		}
		t.Skipf("%s; set %s=1 to make this a failure", msg, RequireEnv)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	s := &Server{t: t, bin: bin, dir: t.TempDir(), Port: port}
	t.Cleanup(s.Stop)
	return s
}

// URL is the redis:// URL of the server.
func (s *Server) URL() string { return fmt.Sprintf("redis://127.0.0.1:%d/0", s.Port) }

// Addr is host:port of the server.
func (s *Server) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.Port) }

// Restart starts the server again on the same port, empty; it waits until
// it answers PING.
func (s *Server) Restart() {
	s.t.Helper()
	if s.cmd != nil {
		s.t.Fatal("redistest: Restart while running")
	}
	cmd := exec.Command(s.bin, append([]string{
		"--port", strconv.Itoa(s.Port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", s.dir,
		"--protected-mode", "no", "--loglevel", "warning"}, s.Args...)...)
	logf, err := os.OpenFile(filepath.Join(s.dir, "redis.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		s.t.Fatal(err)
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("redistest: start redis-server: %v", err)
	}
	s.cmd, s.done = cmd, make(chan struct{})
	go func(done chan struct{}) { cmd.Wait(); close(done) }(s.done)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if reply, err := s.Do("PING"); err == nil && reply == "PONG" {
			return
		}
		select {
		case <-s.done:
			s.cmd = nil
			s.t.Fatal("redistest: redis-server exited at start")
		default:
		}
		if time.Now().After(deadline) {
			s.Stop()
			s.t.Fatal("redistest: redis-server did not answer PING within 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Stop kills the server, as a crash would, and waits for it to exit.
func (s *Server) Stop() {
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Kill()
	<-s.done
	s.cmd = nil
}

// AddUser creates the ACL user name with password pass and the given ACL
// rules (say "~presence:*", "&presence:*", "+@all"), for tests of
// credentials and rights. A user made this way is lost at Restart.
func (s *Server) AddUser(name, pass string, rules ...string) {
	s.t.Helper()
	args := append([]string{"ACL", "SETUSER", name, "reset", "on", ">" + pass}, rules...)
	if _, err := s.Do(args...); err != nil {
		s.t.Fatalf("redistest: ACL SETUSER %s: %v", name, err)
	}
}

// URLFor is the redis:// URL of the server with user, password and
// database db.
func (s *Server) URLFor(user, pass string, db int) string {
	return fmt.Sprintf("redis://%s:%s@127.0.0.1:%d/%d", user, pass, s.Port, db)
}

// Do sends one command over a new connection; see resp.Do.
func (s *Server) Do(args ...string) (string, error) { return resp.Do(s.Addr(), args...) }
