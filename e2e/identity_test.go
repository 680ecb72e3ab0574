package e2e

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/presence/presence/internal/redistest"
)

const testSecret = "0123456789abcdef0123456789abcdef-test-secret"

// token mints an HS256 token for sub with claims added.
func token(t *testing.T, secret, sub, name string, extra jwt.MapClaims) string {
	t.Helper()
	c := jwt.MapClaims{"sub": sub, "exp": time.Now().Add(time.Hour).Unix()}
	if name != "" {
		c["name"] = name
	}
	for k, v := range extra {
		c[k] = v
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func visitorCookie() string {
	var b [16]byte
	rand.Read(b[:])
	return "Cookie: presence_visitor=" + hex.EncodeToString(b[:])
}

// presenceEvent is the data of a presence event.
type presenceEvent struct {
	Room        string `json:"room"`
	People      int    `json:"people"`
	Connections int    `json:"connections"`
	Members     []struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	} `json:"members"`
	Truncated bool `json:"truncated"`
}

func lastPresence(t *testing.T, c *sseClient) presenceEvent {
	t.Helper()
	evs := c.Events("presence")
	if len(evs) == 0 {
		return presenceEvent{People: -1}
	}
	return decodePresence(t, evs[len(evs)-1])
}

func decodePresence(t *testing.T, data string) (p presenceEvent) {
	t.Helper()
	if err := json.Unmarshal([]byte(data), &p); err != nil {
		t.Fatalf("presence event %q: %v", data, err)
	}
	return p
}

func waitPresence(t *testing.T, c *sseClient, people, conns int) {
	t.Helper()
	c.waitFor(t, 5*time.Second, "presence", func() bool {
		p := lastPresence(t, c)
		return p.People == people && p.Connections == conns && c.Last() == people
	})
}

// Three tabs of one browser (one visitor cookie) are one person and three
// connections; a browser's first page load gets its cookie.
func TestTabsOfOneBrowserAreOnePerson(t *testing.T) {
	s := startServer(t)
	code, h, _ := get(t, s.URL+"/")
	if code != 200 || !strings.Contains(h.Get("Set-Cookie"), "presence_visitor=") ||
		!strings.Contains(h.Get("Set-Cookie"), "HttpOnly") || !strings.Contains(h.Get("Set-Cookie"), "SameSite=Lax") {
		t.Errorf("GET / set no visitor cookie: %q", h.Get("Set-Cookie"))
	}
	obs := dial(t, s, "/rooms/tabs/events")
	if !strings.Contains(obs.Header.Get("Set-Cookie"), "presence_visitor=") {
		t.Errorf("a stream without a cookie was not given one")
	}
	waitPresence(t, obs, 1, 1)
	cookie := visitorCookie()
	for range 3 {
		dial(t, s, "/rooms/tabs/events", cookie)
	}
	waitPresence(t, obs, 2, 4)
}

// A refresh within the grace changes nothing anyone sees; the last tab
// closing gives one leave, after the grace and not before.
func TestGraceHidesRefreshes(t *testing.T) {
	const grace = time.Second
	s := startServer(t, "--grace", grace.String())
	obs := dial(t, s, "/rooms/g/events")
	cookie := visitorCookie()
	tab := dial(t, s, "/rooms/g/events", cookie)
	waitPresence(t, obs, 2, 2)
	time.Sleep(grace) // a grace is earned by being there a grace

	before := obs.NumEvents()
	tab.Close()
	time.Sleep(grace / 4) // the user clicks reload: a span of time is the point
	tab = dial(t, s, "/rooms/g/events", cookie)
	tab.waitCount(t, 2)
	deadline := time.Now().Add(grace + grace/2)
	for time.Now().Before(deadline) { // nothing may come for a grace and more
		if n := obs.NumEvents(); n != before {
			t.Fatalf("a refresh within the grace sent the others %v", obs.Events("presence"))
		}
		time.Sleep(10 * time.Millisecond)
	}

	start := time.Now()
	tab.Close()
	obs.waitFor(t, 5*time.Second, "the leave", func() bool { return obs.Last() == 1 })
	if took := time.Since(start); took < grace || took > grace+time.Second {
		t.Errorf("the leave came %v after the last tab closed, want just after the grace (%v)", took, grace)
	}
	if got := obs.Counts()[len(obs.Counts())-2:]; got[0] != 2 || got[1] != 1 {
		t.Errorf("counts %v, want one step from 2 to 1", obs.Counts())
	}
}

// A signed-in user on two connections counts once; streams with a token
// get the members, then join and leave events.
func TestSignedInMembers(t *testing.T) {
	s := startServer(t, "--token-secret", testSecret, "--grace", "200ms")
	alice := token(t, testSecret, "alice", "Alice", nil)
	w := dial(t, s, "/rooms/m/events?token="+alice)
	if w.Status != 200 {
		t.Fatalf("status %d", w.Status)
	}
	dial(t, s, "/rooms/m/events", "Cookie: presence_token="+alice) // the cookie works too
	waitPresence(t, w, 1, 2)
	first := decodePresence(t, w.Events("presence")[0])
	if len(first.Members) != 1 || first.Members[0].ID != "alice" || first.Members[0].Name != "Alice" {
		t.Errorf("members on open: %+v", first.Members)
	}

	bob := dial(t, s, "/rooms/m/events?token="+token(t, testSecret, "bob", "Bob \"B\"", nil))
	bobAt := time.Now() // bob joined before his answer came
	w.waitFor(t, 5*time.Second, "bob's join", func() bool { return len(w.Events("join")) == 1 })
	if j := w.Events("join")[0]; j != `{"room":"m","id":"bob","name":"Bob \"B\""}` {
		t.Errorf("join event %s", j)
	}
	anon := dial(t, s, "/rooms/m/events")
	waitPresence(t, w, 3, 4)
	if len(anon.Events("join")) != 0 || lastPresence(t, anon).Members != nil {
		t.Errorf("an anonymous stream got member data")
	}
	time.Sleep(time.Until(bobAt.Add(200 * time.Millisecond))) // bob earns the grace
	start := time.Now()
	bob.Close()
	w.waitFor(t, 5*time.Second, "bob's leave", func() bool { return len(w.Events("leave")) == 1 })
	if took := time.Since(start); took < 200*time.Millisecond {
		t.Errorf("bob's leave came %v after he closed, before the grace (200ms) ended", took)
	}
	if l := w.Events("leave")[0]; l != `{"room":"m","id":"bob","name":"Bob \"B\""}` {
		t.Errorf("leave event %s", l)
	}
	if len(w.Events("join")) != 1 {
		t.Errorf("joins %v", w.Events("join"))
	}
}

// Bad tokens get 401 with a JSON error that says what was wrong.
func TestBadTokens(t *testing.T) {
	s := startServer(t, "--token-secret", testSecret)
	expired := token(t, testSecret, "a", "", jwt.MapClaims{"exp": time.Now().Add(-time.Hour).Unix()})
	wrongKey := token(t, "another-secret-another-secret-another", "a", "", nil)
	b64 := base64.RawURLEncoding.EncodeToString
	none := b64([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + b64([]byte(`{"sub":"a","exp":9999999999}`)) + "."
	for _, c := range []struct{ tok, want string }{
		{expired, "expired"},
		{wrongKey, "signature"},
		{none, "algorithm"},
		{"garbage", "malformed"},
	} {
		code, _, body := get(t, s.URL+"/rooms/x/events?token="+c.tok)
		var e struct{ Error string }
		if code != 401 || json.Unmarshal([]byte(body), &e) != nil || !strings.Contains(e.Error, c.want) {
			t.Errorf("token %q: %d %s, want 401 saying %q", c.want, code, body, c.want)
		}
		if strings.Contains(body, c.tok) {
			t.Errorf("the answer repeats the token")
		}
	}
	// Without a key, a token is refused rather than ignored.
	s2 := startServer(t)
	if code, _, body := get(t, s2.URL+"/events?token="+token(t, testSecret, "a", "", nil)); code != 401 || !strings.Contains(body, "no token key") {
		t.Errorf("token with no key configured: %d %s", code, body)
	}
}

// Private rooms need a token; a token's rooms claim limits where it opens.
func TestPrivateRooms(t *testing.T) {
	s := startServer(t, "--token-secret", testSecret, "--private-rooms", "staff-*, ops")
	if code, _, body := get(t, s.URL+"/rooms/staff-1/events"); code != 401 || !strings.Contains(body, "needs a token") {
		t.Errorf("private room without a token: %d %s", code, body)
	}
	docsOnly := token(t, testSecret, "a", "", jwt.MapClaims{"rooms": []string{"docs-*"}})
	if code, _, body := get(t, s.URL+"/rooms/staff-1/events?token="+docsOnly); code != 403 || !strings.Contains(body, "does not open") {
		t.Errorf("token limited to docs-* on staff-1: %d %s", code, body)
	}
	if c := dial(t, s, "/rooms/docs-1/events?token="+docsOnly); c.Status != 200 {
		t.Errorf("token limited to docs-* on docs-1: %d", c.Status)
	}
	if c := dial(t, s, "/rooms/staff-1/events?token="+token(t, testSecret, "b", "", nil)); c.Status != 200 {
		t.Errorf("unlimited token on a private room: %d", c.Status)
	}
	if c := dial(t, s, "/rooms/public/events"); c.Status != 200 {
		t.Errorf("public room: %d", c.Status)
	}
}

// The member list is capped, and says so.
func TestMemberCap(t *testing.T) {
	s := startServer(t, "--token-secret", testSecret, "--members-cap", "2")
	for _, u := range []string{"u1", "u2", "u3"} {
		c := dial(t, s, "/rooms/cap/events?token="+token(t, testSecret, u, "", nil))
		c.waitFor(t, 5*time.Second, "open", func() bool { return c.Last() > 0 })
	}
	w := dial(t, s, "/rooms/cap/events?token="+token(t, testSecret, "u0", "", nil))
	waitPresence(t, w, 4, 4)
	if p := w.Events("presence")[0]; !strings.Contains(p, `"truncated":true`) {
		t.Errorf("first presence event not truncated: %s", p)
	}
	p := decodePresence(t, w.Events("presence")[0])
	if len(p.Members) != 2 || p.Members[0].ID != "u0" || p.Members[1].ID != "u1" {
		t.Errorf("members %+v, want the first 2 by id", p.Members)
	}
}

// Through Redis, a person with tabs on two nodes counts once, and member
// lists and join and leave events are global.
func TestPeopleAcrossNodes(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	args := []string{"--redis-url", srv.URL(), "--token-secret", testSecret, "--grace", "300ms"}
	n1 := startServer(t, append(args, "--node-id", "n1")...)
	n2 := startServer(t, append(args, "--node-id", "n2")...)
	w := dial(t, n1, "/rooms/x/events?token="+token(t, testSecret, "watcher", "", nil))
	cookie := visitorCookie()
	dial(t, n1, "/rooms/x/events", cookie)
	dial(t, n2, "/rooms/x/events", cookie)
	waitPresence(t, w, 2, 3)

	bob := dial(t, n2, "/rooms/x/events?token="+token(t, testSecret, "bob", "Bob", nil))
	w.waitFor(t, 5*time.Second, "bob's join from the other node", func() bool { return len(w.Events("join")) == 1 })
	dial(t, n1, "/rooms/x/events?token="+token(t, testSecret, "bob", "Bob", nil)) // bob, on both nodes
	waitPresence(t, w, 3, 5)
	bob.Close()
	waitPresence(t, w, 3, 4)
	if len(w.Events("leave")) != 0 {
		t.Errorf("bob left while still on n1: %v", w.Events("leave"))
	}
	if v := apiRoom(t, n2, "x"); v.Count != 3 {
		t.Errorf("n2's API: %+v", v)
	}

	// A node's crash takes its people with it, within the same bound:
	// carol is only on n2.
	dial(t, n2, "/rooms/x/events?token="+token(t, testSecret, "carol", "Carol", nil))
	w.waitFor(t, 5*time.Second, "carol's join", func() bool { return len(w.Events("join")) == 2 })
	n2.kill()
	start := time.Now()
	w.waitFor(t, 5*time.Second, "carol's leave after n2 died", func() bool {
		l := w.Events("leave")
		return len(l) == 1 && strings.Contains(l[0], `"carol"`)
	})
	waitPresence(t, w, 3, 3) // watcher, the visitor (on n1 too), bob (on n1 too)
	t.Logf("n2's people gone %v after kill -9", time.Since(start).Round(time.Millisecond))
}

// RS256 and EdDSA tokens are checked with a public key file: an auth
// service can mint them without sharing a secret.
func TestPublicKeyTokens(t *testing.T) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "token.pub")
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600)
	s := startServer(t, "--token-public-key", keyFile)
	tok, err := jwt.NewWithClaims(jwt.SigningMethodEdDSA, jwt.MapClaims{
		"sub": "ed", "name": "Ed", "exp": time.Now().Add(time.Hour).Unix(),
	}).SignedString(priv)
	if err != nil {
		t.Fatal(err)
	}
	c := dial(t, s, "/rooms/k/events?token="+tok)
	waitPresence(t, c, 1, 1)
	if p := c.Events("presence")[0]; !strings.Contains(p, `"members":[{"id":"ed","name":"Ed"}]`) {
		t.Errorf("first presence event %s", p)
	}
	// A secret-signed token is refused: no secret is configured.
	if code, _, body := get(t, s.URL+"/rooms/k/events?token="+token(t, testSecret, "a", "", nil)); code != 401 || !strings.Contains(body, "algorithm") {
		t.Errorf("HS256 token with only a public key: %d %s", code, body)
	}
}
