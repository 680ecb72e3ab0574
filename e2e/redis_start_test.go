package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/presence/presence/internal/redistest"
)

// runLogged starts the service with its log at info, so that a test can
// read what an operator would see, without waiting for it to listen.
func runLogged(t *testing.T, args ...string) *testServer {
	t.Helper()
	return launch(t, append([]string{"--log-level", "info"}, args...)...)
}

// A Redis that refuses the node's credentials, rights or database stops it
// at start, at once, with an error that names the setting and the reason
// and never the password.
func TestRedisThatRefusesTheNodeStopsItAtStart(t *testing.T) {
	t.Parallel()
	const (
		goodPass   = "Good-Secret-Okapi-5521"
		wrongPass  = "Wrong-Secret-Zebra-4711"
		readerPass = "Reader-Secret-Lemur-9034"
	)
	srv := redistest.Start(t)
	srv.AddUser("presence", goodPass, "~presence:*", "&presence:*", "+@all")
	srv.AddUser("reader", readerPass, "~presence:*", "&presence:*", "+ping") // no scripts
	closed := redistest.Start(t)                                             // no default user: every client must log in
	if _, err := closed.Do("ACL", "SETUSER", "default", "off"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, url string
		want      []string
	}{
		{"wrong password", srv.URLFor("presence", wrongPass, 0), []string{"WRONGPASS", "user and password"}},
		{"no such user", srv.URLFor("nobody", wrongPass, 0), []string{"WRONGPASS"}},
		{"no password", closed.URL(), []string{"NOAUTH"}},
		{"database out of range", srv.URLFor("presence", goodPass, 99), []string{"DB index is out of range", "database number"}},
		{"no rights to run scripts", srv.URLFor("reader", readerPass, 0), []string{"NOPERM", "+@all"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			n := runLogged(t, "--redis-url", tc.url, "--node-id", "refused")
			err := n.exit(t, 5*time.Second)
			took := time.Since(start)
			if err == nil {
				t.Fatalf("the service exited 0; want an error. Output:\n%s", n.out)
			}
			t.Logf("the service exited after %v: %v", took.Round(time.Millisecond), err)
			for _, w := range append([]string{"--redis-url", "PRESENCE_REDIS_URL", "refused"}, tc.want...) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			all := err.Error() + "\n" + n.out.String()
			for _, secret := range []string{goodPass, wrongPass, readerPass} {
				if strings.Contains(all, secret) {
					t.Errorf("the password %q shows:\n%s", secret, all)
				}
			}
			if strings.Contains(n.out.String(), "presence listening") {
				t.Errorf("the node listened before it stopped:\n%s", n.out)
			}
		})
	}
}

// A --redis-url that does not parse is an error that names the setting
// without showing the password, whatever is wrong with it.
func TestMalformedRedisURLNeverShowsThePassword(t *testing.T) {
	t.Parallel()
	const secret = "Pw-Zebra-8812"
	for _, url := range []string{
		"redis://presence:" + secret + " x@127.0.0.1:6379/0",  // a space
		"redis://presence:" + secret + "%zz@127.0.0.1:6379/0", // a bad escape
		"redis://presence:" + secret + "/x@127.0.0.1:6379/0",  // a '/' that ends the host early
		"redis://presence:" + secret + "#x@127.0.0.1:6379/0",  // a '#' that starts a fragment
		"redis://presence:" + secret + "@127.0.0.1:port/0",    // a port that is no number
		"redis://presence:" + secret + "@127.0.0.1:6379/db",   // a database that is no number
		"redis://" + secret + "@[::1:6379/0",                  // a password without the user's colon, and a bad host
		"redis:/presence:" + secret + "@127.0.0.1 :6379/0",    // one slash too few
		"presence:" + secret + "@127.0.0.1:6379",              // no scheme
		"http://presence:" + secret + "@127.0.0.1:6379/0",     // not redis
	} {
		n := runLogged(t, "--redis-url", url)
		err := n.exit(t, 5*time.Second)
		if err == nil {
			t.Errorf("%s: the service exited 0", url)
			continue
		}
		all := err.Error() + "\n" + n.out.String()
		if !strings.Contains(err.Error(), "--redis-url") {
			t.Errorf("the error does not name --redis-url: %v", err)
		}
		for _, piece := range []string{secret, "Zebra", "8812"} {
			if strings.Contains(all, piece) {
				t.Errorf("%q of the password shows:\n%s", piece, all)
			}
		}
		t.Logf("%v", err)
	}
}

// A node whose Redis is not there yet at start runs but is not ready:
// /readyz says 503 with a short reason, the log says why at once; when Redis
// comes, the node turns ready by itself and its counts are shared. A later
// outage leaves it ready and degraded.
func TestNodeIsNotReadyUntilItsRedisAnswers(t *testing.T) {
	t.Parallel()
	const pass = "Start-Secret-Tapir-6630"
	srv := redistest.Reserve(t) // nothing answers on its port yet
	url := srv.URLFor("presence", pass, 0)
	start := time.Now()
	a := runLogged(t, "--redis-url", url, "--node-id", "a")
	a.listening(t)
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("the node took %v to listen without its Redis", took)
	}
	if !strings.Contains(a.out.String(), "level=WARN msg=\"redis unreachable") {
		t.Errorf("no warning that redis is unreachable by the time the node listens:\n%s", a.out)
	}
	code, _, body := get(t, a.URL+"/readyz")
	var got map[string]string
	if err := json.Unmarshal([]byte(body), &got); code != 503 || err != nil ||
		got["status"] != "not ready" || got["reason"] != "redis unreachable" || len(got) != 2 {
		t.Errorf("/readyz without redis = %d %s, want 503 {\"status\":\"not ready\",\"reason\":\"redis unreachable\"}", code, body)
	}
	c1 := dial(t, a, "/rooms/demo/events") // served meanwhile, with this node's own count
	c1.waitCount(t, 1)

	srv.Args = []string{"--user", "presence", "on", ">" + pass, "~presence:*", "&presence:*", "+@all"}
	srv.Restart()
	came := time.Now()
	waitUntil(t, 10*time.Second, "node a ready once redis answers", func() bool {
		code, _, _ := get(t, a.URL+"/readyz")
		return code == 200
	})
	t.Logf("ready %v after redis came", time.Since(came).Round(time.Millisecond))
	if _, _, body := get(t, a.URL+"/readyz"); body != `{"status":"ready"}`+"\n" {
		t.Errorf("/readyz once ready = %q", body)
	}
	if !strings.Contains(a.out.String(), "this node is ready") {
		t.Errorf("the log does not say the node turned ready:\n%s", a.out)
	}

	b := runLogged(t, "--redis-url", url, "--node-id", "b")
	b.listening(t)
	c2 := dial(t, b, "/rooms/demo/events")
	waitAllCount(t, 5*time.Second, 2, []*sseClient{c1, c2})

	// A later outage leaves the node ready, serving the last known counts,
	// and /readyz says so in a few words, with no address.
	srv.Stop()
	var degraded string
	waitUntil(t, 5*time.Second, "node a degraded", func() bool {
		code, _, degraded = get(t, a.URL+"/readyz")
		return code == 200 && strings.Contains(degraded, "degraded")
	})
	if degraded != `{"reason":"redis unreachable","status":"degraded"}`+"\n" {
		t.Errorf("/readyz during a later outage = %q, want a short reason", degraded)
	}

	srv.Restart()
	waitUntil(t, 10*time.Second, "node a current again", func() bool {
		_, _, body := get(t, a.URL+"/readyz")
		return body == `{"status":"ready"}`+"\n"
	})

	for _, out := range []string{a.out.String(), b.out.String(), body, degraded} {
		if strings.Contains(out, pass) {
			t.Errorf("the password shows:\n%s", out)
		}
	}
	if !strings.Contains(a.out.String(), fmt.Sprintf("redis=redis://presence:xxxxx@127.0.0.1:%d/0", srv.Port)) {
		t.Errorf("the log does not name the redis it waits for, password hidden:\n%s", a.out)
	}
}
