package redis

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/presence/presence/internal/redistest"
)

func TestRedactURL(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"},
		{"redis://user:secret@host:6379/0", "redis://user:xxxxx@host:6379/0"},
		{"redis://:secret@host", "redis://:xxxxx@host"},
		{"rediss://user:se:cr@et@host/1?dial_timeout=1s", "rediss://user:xxxxx@host/1?dial_timeout=xxxxx"},
		{"redis://host:6379/0?password=secret&db=1", "redis://host:6379/0?password=xxxxx&db=xxxxx"}, // options may hold secrets
		{"redis://user:sec ret/x#y@host:6379/0", "redis://user:xxxxx@host:6379/0"},                  // does not parse
		{"redis://secret@host", "redis://:xxxxx@host"},                                              // no colon: hide it all
		{"user:secret@host:6379", "user:xxxxx@host:6379"},                                           // no scheme
		{"unix://user:secret@/run/redis.sock", "unix://user:xxxxx@/run/redis.sock"},
	} {
		if got := redactURL(tc.in); got != tc.want {
			t.Errorf("redactURL(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// New's error for a URL that does not parse says what to fix and never
// shows the password, even in part.
func TestBadURLErrorHidesThePassword(t *testing.T) {
	const secret = "Qz-Okapi-3141"
	for _, u := range []string{
		"redis://u:" + secret + " @host:6379/0",
		"redis://u:" + secret + "%@host:6379/0",
		"redis://u:" + secret + "/@host:6379/0",
		"redis://u:" + secret + "?@host:6379/0",
		"redis://u:" + secret + "@host:6379/x",
		"redis://u:" + secret + "@host:6379/0?nosuch=1",
		"redis://host:6379/0?password=" + secret, // go-redis has no such option
		"redis://u:" + secret + "@host:99999/0",  // no such port: a typo, not an outage
		"redis:/u:" + secret + "@host :6379/0",
	} {
		_, err := New(Options{URL: u})
		if err == nil {
			t.Errorf("New(%q) = nil error", u)
			continue
		}
		for _, piece := range []string{secret, "Okapi", "3141"} {
			if strings.Contains(err.Error(), piece) {
				t.Errorf("New(%q): error %q shows %q", u, err, piece)
			}
		}
	}
}

// logBuffer is a slog handler's output, read while the node runs.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *logBuffer) count(s string) int { return strings.Count(l.String(), s) }

// runLogged runs a Backend for url with its log kept.
func runLogged(t *testing.T, url string, warnEvery time.Duration) (*Backend, *logBuffer) {
	t.Helper()
	logs := &logBuffer{}
	b, err := New(Options{URL: url, NodeID: "n", NodeTimeout: testTimeout, WarnEvery: warnEvery,
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	err = b.Check(ctx)
	cancel()
	if err != nil {
		b.rdb.Close()
		t.Fatalf("Check: %v", err)
	}
	ctx, cancel = context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); b.Run(ctx, nil, nil) }()
	t.Cleanup(func() { cancel(); <-done; b.rdb.Close() })
	return b, logs
}

// Without Redis at start, a node is not ready, says why at once and again
// every WarnEvery (not on every retry), and turns ready by itself when
// Redis answers. A later outage leaves it ready, serving the last known
// counts, and is logged the same way.
func TestUnreachableAtStartIsLoggedNowAndThen(t *testing.T) {
	srv := redistest.Reserve(t)
	const every = 400 * time.Millisecond
	b, logs := runLogged(t, srv.URL(), every)
	if err := b.Ready(); !errors.Is(err, errUnreachable) {
		t.Fatalf("Ready without redis = %v, want %v", err, errUnreachable)
	}
	if n := logs.count("redis unreachable"); n != 1 {
		t.Errorf("%d warnings right after Check, want 1:\n%s", n, logs)
	}
	const quiet = 5*every + every/2
	time.Sleep(quiet) // a window to count in, not a wait: nothing changes meanwhile
	warned, failed := logs.count("redis unreachable"), b.Stats().Errors
	t.Logf("%d warnings for %d failed calls in %v", warned, failed, quiet)
	if warned < 3 || warned > 7 { // 6 at most; fewer if ticks lag under load
		t.Errorf("%d warnings in %v with WarnEvery %v, want about 6:\n%s", warned, quiet, every, logs)
	}
	// Retries come every tick (each may take go-redis's own dial retries,
	// longer under load): more of them than warnings shows that a retry
	// alone is not logged.
	if failed <= uint64(warned) {
		t.Errorf("%d failed calls for %d warnings: want fewer warnings than retries", failed, warned)
	}
	if b.Ready() == nil {
		t.Fatal("ready without redis")
	}

	srv.Restart()
	waitFor(t, 5*time.Second, "ready once redis answers", func() bool { return b.Ready() == nil && b.Health() == nil })
	if n := logs.count("this node is ready"); n != 1 {
		t.Errorf("%d lines say the node is ready, want 1:\n%s", n, logs)
	}

	srv.Stop()
	waitFor(t, 5*time.Second, "degraded", func() bool { return b.Health() != nil })
	waitFor(t, every, "the outage logged at once", func() bool { return logs.count("redis unavailable: serving the last known counts") >= 1 })
	if err := b.Ready(); err != nil {
		t.Errorf("Ready during a later outage = %v, want nil: the node serves the last known counts", err)
	}
	srv.Restart()
	waitFor(t, 5*time.Second, "healthy again", func() bool { return b.Health() == nil })
	waitFor(t, time.Second, "the return logged", func() bool { return logs.count("redis available again") == 1 })
}

// Check sorts what Redis says: a refusal is an error, an unreachable Redis
// is not.
func TestCheck(t *testing.T) {
	srv := redistest.Start(t)
	srv.AddUser("p", "Right-Pass", "~presence:*", "&presence:*", "+@all")
	srv.AddUser("ro", "Right-Pass", "~presence:*", "&presence:*", "+ping", "+subscribe")
	gone := redistest.Reserve(t)
	for _, tc := range []struct {
		url     string
		refused bool
	}{
		{srv.URLFor("p", "Right-Pass", 0), false},
		{srv.URLFor("p", "Wrong-Pass", 0), true},
		{srv.URLFor("p", "Right-Pass", 16), true},
		{srv.URLFor("ro", "Right-Pass", 0), true},
		{gone.URL(), false},
	} {
		b, err := New(Options{URL: tc.url})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		err = b.Check(ctx)
		cancel()
		b.rdb.Close()
		if got := errors.Is(err, ErrRefused); got != tc.refused || (err != nil) != tc.refused {
			t.Errorf("Check(%s) = %v, want refused %v", tc.url, err, tc.refused)
		}
		if err != nil && (strings.Contains(err.Error(), "Right-Pass") || strings.Contains(err.Error(), "Wrong-Pass")) {
			t.Errorf("Check(%s) shows the password: %v", tc.url, err)
		}
	}
}

// Credentials that Redis stops taking while the node runs (an ACL change)
// do not stop it: it logs an error now and then, stays ready with the last
// known counts, and heals when Redis takes them again.
func TestRefusedWhileRunning(t *testing.T) {
	srv := redistest.Start(t)
	srv.AddUser("p", "Pass-Walrus-1", "~presence:*", "&presence:*", "+@all")
	b, logs := runLogged(t, srv.URLFor("p", "Pass-Walrus-1", 0), DefaultWarnEvery)
	waitFor(t, 5*time.Second, "ready", func() bool { return b.Ready() == nil && b.Health() == nil })

	if _, err := srv.Do("ACL", "SETUSER", "p", "resetpass", ">Pass-Walrus-2"); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Do("CLIENT", "KILL", "USER", "p"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "the refusal logged", func() bool { return logs.count("level=ERROR msg=\"redis refuses this node") == 1 })
	if b.Health() == nil || b.Ready() != nil {
		t.Errorf("health %v, ready %v: want degraded and still ready", b.Health(), b.Ready())
	}
	if _, err := srv.Do("ACL", "SETUSER", "p", "resetpass", ">Pass-Walrus-1"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "healthy again", func() bool { return b.Health() == nil })
	if strings.Contains(logs.String(), "Pass-Walrus") {
		t.Errorf("the log shows a password:\n%s", logs)
	}
}
