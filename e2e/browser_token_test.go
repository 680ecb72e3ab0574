package e2e

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// The demo page signed in with a token function (?token-url=), on tokens
// that last 10 s, in a private room: it stays live across two expiries, in
// two tabs sharing one stream. Each time, the page switches to a new
// stream with a fresh token before the server ends the old one: the count
// never leaves the page, and no one else sees it move.
func TestBrowserTokenRefresh(t *testing.T) {
	const life = 10 * time.Second
	s := browserServer(t, "--token-secret", testSecret, "--private-rooms", "team-*")
	tokens := tokenServer(t, life)
	issued, lastEnd := &tokens.issued, &tokens.lastEnd

	// Someone else in the room, who must see nothing move.
	obs := dial(t, s, "/rooms/team-x/events?token="+token(t, testSecret, "obs", "", nil))
	obs.waitCount(t, 1)

	b := browser(t)
	page := s.URL + "/?room=team-x&token-url=" + url.QueryEscape(tokens.URL)
	profile := newProfile(t, b)
	tabs := openTabs(t, profile, page, 2)
	waitTabs(t, 15*time.Second, 2, tabs...)
	obs.waitCount(t, 2)
	seen := len(obs.Counts())
	if !eval[bool](t, tabs[0], `presence.sharing`) {
		t.Errorf("tab sharing is off")
	}
	// Every state and count the widget reports from now on, however short.
	for _, tb := range tabs {
		eval[bool](t, tb, `(() => { window.__seen = []; const r = presence.room('team-x');
			r.on('state', (s) => __seen.push(s)).on('count', (n) => __seen.push(String(n))); return true; })()`)
	}

	// Watch every tab until the second token's streams would have ended.
	var second int64
	start := time.Now()
	for polls := 0; ; polls++ {
		if second == 0 && issued.Load() >= 2 {
			second = lastEnd.Load()
		}
		if second != 0 && time.Now().UnixMilli() > second+1000 {
			t.Logf("%d polls of 2 tabs over %v: always live at 2", polls, time.Since(start).Round(time.Millisecond))
			break
		}
		if time.Since(start) > 3*life {
			t.Fatalf("after %v, %d tokens were fetched, want 2 or more", time.Since(start).Round(time.Millisecond), issued.Load())
		}
		for i, tb := range tabs {
			if p := demo(t, tb); p.State != "live" || strings.TrimSpace(p.Count) != "2" {
				t.Fatalf("%v in, tab %d shows %s; want 2, live", time.Since(start).Round(time.Millisecond), i, p)
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	for i, tb := range tabs {
		if seen := eval[[]string](t, tb, `window.__seen`); len(seen) == 0 || slices.ContainsFunc(seen, func(v string) bool { return v != "live" && v != "2" }) {
			t.Errorf("tab %d's widget reported %q; want only live and 2", i, seen)
		}
	}
	leaders := 0
	for _, tb := range tabs {
		if eval[bool](t, tb, `presence.room('team-x').leader`) {
			leaders++
		}
	}
	if leaders != 1 {
		t.Errorf("%d tabs lead, want 1 stream for both", leaders)
	}
	for _, n := range obs.Counts()[seen:] {
		if n != 2 {
			t.Errorf("the other member saw counts %v, want 2 throughout", obs.Counts()[seen-1:])
			break
		}
	}
	// The server saw the new tokens: a stream for each, and none ended by
	// the server for an expired token (the page always switched first).
	if n := issued.Load(); n < 3 {
		t.Errorf("%d tokens fetched, want at least 3 (the first and two refreshes)", n)
	}
	if got := metric(t, s, "presence_connects_total"); got < 4 {
		t.Errorf("%v streams opened, want at least 4 (the other member's and three of the page's)", got)
	}
	if got := metric(t, s, `presence_disconnects_total{reason="expired"}`); got != 0 {
		t.Errorf("%v streams ended by the server with their token; the page should have switched first", got)
	}
	t.Logf("%d tokens fetched; %v streams opened", issued.Load(), metric(t, s, "presence_connects_total"))
}

// tokenSource is an auth service that mints a token for "pat" that expires
// life from now on every request (whole seconds, as JWT's exp is).
type tokenSource struct {
	URL     string
	issued  atomic.Int64 // tokens handed out
	lastEnd atomic.Int64 // unix ms at which the newest token's streams end (exp + 5 s)
}

func tokenServer(t *testing.T, life time.Duration) *tokenSource {
	t.Helper()
	ts := &tokenSource{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		exp := time.Now().Add(life).Unix()
		tok := token(t, testSecret, "pat", "Pat", jwt.MapClaims{"exp": exp})
		ts.issued.Add(1)
		ts.lastEnd.Store(time.Unix(exp, 0).Add(5 * time.Second).UnixMilli())
		w.Header().Set("Access-Control-Allow-Origin", "*") // the page is the service's origin
		w.Header().Set("Cache-Control", "no-store")
		fmt.Fprint(w, tok)
	}))
	t.Cleanup(srv.Close)
	ts.URL = srv.URL + "/token"
	return ts
}

// A token function that keeps returning tokens that expire within a second
// cannot make the page reconnect in a storm: at most one new stream per 3
// s. With the server's 5 s of leeway, each stream still lasts longer than
// that, so the page stays live all along.
func TestBrowserShortTokensMakeNoStorm(t *testing.T) {
	const watch = 16 * time.Second
	s := browserServer(t, "--token-secret", testSecret, "--private-rooms", "team-*")
	tokens := tokenServer(t, time.Second)
	tb, _ := tab(t, newProfile(t, browser(t)), s.URL+"/?room=team-y&token-url="+url.QueryEscape(tokens.URL))
	waitTabs(t, 10*time.Second, 1, tb)
	start, before := time.Now(), metric(t, s, "presence_connects_total")
	for time.Since(start) < watch {
		if p := demo(t, tb); p.State != "live" || strings.TrimSpace(p.Count) != "1" {
			t.Fatalf("%v in, the page shows %s; want 1, live", time.Since(start).Round(time.Millisecond), p)
		}
		time.Sleep(100 * time.Millisecond)
	}
	opened := metric(t, s, "presence_connects_total") - before
	t.Logf("tokens of 1 s: %v streams opened in %v, %d tokens fetched", opened, watch, tokens.issued.Load())
	if most := float64(watch/(3*time.Second)) + 1; opened > most {
		t.Errorf("%v streams opened in %v, want at most %v (one per 3 s)", opened, watch, most)
	}
	if opened < 2 {
		t.Errorf("%v streams opened in %v: the page did not renew its tokens", opened, watch)
	}
}
