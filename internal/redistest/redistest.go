// Package redistest runs a real redis-server for tests: on a free port of
// 127.0.0.1, in a temporary directory, without persistence, stopped when
// the test ends. Tests can stop and restart it (it comes back empty, as
// after a crash that lost its data) to exercise outages.
package redistest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
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

// Client returns a go-redis client of the server, closed when the test
// ends. Its connection stays open between commands, so that a test that
// reads INFO twice sees nothing of its own but the first INFO.
func (s *Server) Client() *goredis.Client {
	c := goredis.NewClient(s.options())
	s.t.Cleanup(func() { c.Close() })
	return c
}

// options are those of a client that sends Redis nothing but the
// commands it is given (and HELLO on connecting), and never retries.
func (s *Server) options() *goredis.Options {
	return &goredis.Options{
		Addr:                     s.Addr(),
		Protocol:                 2, // replies as strings, integers and arrays
		DialTimeout:              time.Second,
		ReadTimeout:              5 * time.Second,
		WriteTimeout:             5 * time.Second,
		MaxRetries:               -1,
		PoolSize:                 1,
		DisableIdentity:          true,
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
	}
}

// Do sends one command over a new connection, which works whatever the
// server went through (a restart, CLIENT PAUSE, a user turned off), and
// returns the reply as text: a status, an integer, a string, or the
// elements of an array joined by newlines; a nil reply is "". Errors in
// the reply come back as errors.
func (s *Server) Do(args ...string) (string, error) {
	c := goredis.NewClient(s.options())
	defer c.Close()
	a := make([]any, len(args))
	for i, v := range args {
		a[i] = v
	}
	v, err := c.Do(context.Background(), a...).Result()
	if errors.Is(err, goredis.Nil) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	return text(v), nil
}

// text is a reply as Do returns it.
func text(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		return v
	case int64:
		return strconv.FormatInt(v, 10)
	case []any:
		parts := make([]string, len(v))
		for i, e := range v {
			parts[i] = text(e)
		}
		return strings.Join(parts, "\n")
	}
	return fmt.Sprint(v)
}
