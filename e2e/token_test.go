package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// apiAnswer is an answer of the JSON API, decoded loosely.
type apiAnswer struct {
	Code   int
	Header http.Header
	Body   string
	List   struct {
		Rooms []struct {
			Room  string `json:"room"`
			Count int    `json:"count"`
		} `json:"rooms"`
		Total     int    `json:"total"`
		Truncated bool   `json:"truncated"`
		Count     int    `json:"count"`
		Error     string `json:"error"`
	}
}

// names lists the rooms of a GET /api/rooms answer.
func (a apiAnswer) names() []string {
	var out []string
	for _, r := range a.List.Rooms {
		out = append(out, r.Room)
	}
	return out
}

func (a apiAnswer) String() string { return fmt.Sprintf("%d %s", a.Code, strings.TrimSpace(a.Body)) }

// apiGet sends method to url with header lines ("Name: value").
func apiGet(t *testing.T, method, url string, headers ...string) apiAnswer {
	t.Helper()
	resp, b := send(t, method, url, "", headers...)
	a := apiAnswer{Code: resp.StatusCode, Header: resp.Header, Body: string(b)}
	if len(b) > 0 {
		if err := json.Unmarshal(b, &a.List); err != nil {
			t.Fatalf("%s %s: %d %q is not JSON", method, url, resp.StatusCode, b)
		}
	}
	return a
}

// The API shows a private room, in the list and on its own, only to a
// token that opens it, whichever way the token comes; the list's total and
// truncated flag do not give private rooms away either. Pages of allowed
// origins get the same rules.
func TestAPIKeepsPrivateRoomsPrivate(t *testing.T) {
	t.Parallel()
	const site = "https://site.example"
	s := startServer(t, "--token-secret", testSecret, "--private-rooms", "staff-*", "--allowed-origins", site)
	boss := token(t, testSecret, "boss", "", nil) // opens every room
	staffA := token(t, testSecret, "a", "", jwt.MapClaims{"rooms": []string{"staff-a"}})
	docs := token(t, testSecret, "d", "", jwt.MapClaims{"rooms": []string{"docs-*"}})
	expired := token(t, testSecret, "a", "", jwt.MapClaims{"rooms": []string{"staff-a"}, "exp": time.Now().Add(-time.Hour).Unix()})
	for _, path := range []string{"/rooms/a-pub/events", "/rooms/b-pub/events",
		"/rooms/staff-a/events?token=" + boss, "/rooms/staff-b/events?token=" + boss, "/rooms/staff-b/events?token=" + boss} {
		c := dial(t, s, path)
		c.waitFor(t, 5*time.Second, "the stream of "+path, func() bool { return c.Last() > 0 })
	}
	rooms := s.URL + "/api/rooms"

	// No token: the public rooms only, and counted as if no other existed.
	for _, c := range []struct {
		query     string
		want      []string
		truncated bool
	}{
		{"", []string{"a-pub", "b-pub"}, false},
		{"?limit=2", []string{"a-pub", "b-pub"}, false},
		{"?limit=1", []string{"a-pub"}, true},
	} {
		a := apiGet(t, "GET", rooms+c.query)
		if a.Code != 200 || !slices.Equal(a.names(), c.want) || a.List.Total != 2 || a.List.Truncated != c.truncated {
			t.Errorf("GET /api/rooms%s without a token: %v; want %v, total 2, truncated %v", c.query, a, c.want, c.truncated)
		}
	}
	a := apiGet(t, "GET", rooms+"/staff-a")
	if a.Code != 401 || !strings.Contains(a.List.Error, "private") || a.Header.Get("WWW-Authenticate") == "" || strings.Contains(a.Body, `"count"`) {
		t.Errorf("a private room without a token: %v %v", a, a.Header)
	}
	if a := apiGet(t, "GET", rooms+"/a-pub"); a.Code != 200 || a.List.Count != 1 {
		t.Errorf("a public room without a token: %v", a)
	}
	// A site's own Basic login is no token: ignored.
	if a := apiGet(t, "GET", rooms+"/a-pub", "Authorization: Basic dXNlcjpwYXNz"); a.Code != 200 {
		t.Errorf("a public room with Basic credentials: %v", a)
	}
	if a := apiGet(t, "GET", rooms+"/staff-a", "Authorization: Basic dXNlcjpwYXNz"); a.Code != 401 {
		t.Errorf("a private room with Basic credentials: %v", a)
	}

	// A token that opens staff-a, in each of the three ways it may come.
	carriers := map[string]func(base, tok string) (string, []string){
		"bearer": func(base, tok string) (string, []string) { return base, []string{"Authorization: Bearer " + tok} },
		"query": func(base, tok string) (string, []string) {
			sep := "?"
			if strings.Contains(base, "?") {
				sep = "&"
			}
			return base + sep + "token=" + tok, nil
		},
		"cookie": func(base, tok string) (string, []string) { return base, []string{"Cookie: presence_token=" + tok} },
	}
	for name, carry := range carriers {
		u, h := carry(rooms, staffA)
		if a := apiGet(t, "GET", u, h...); a.Code != 200 || !slices.Equal(a.names(), []string{"a-pub", "b-pub", "staff-a"}) || a.List.Total != 3 {
			t.Errorf("%s: GET /api/rooms with a token for staff-a: %v", name, a)
		}
		u, h = carry(rooms+"?limit=3", staffA)
		if a := apiGet(t, "GET", u, h...); a.List.Total != 3 || a.List.Truncated {
			t.Errorf("%s: GET /api/rooms?limit=3 with a token for staff-a: %v", name, a)
		}
		u, h = carry(rooms+"/staff-a", staffA)
		if a := apiGet(t, "GET", u, h...); a.Code != 200 || a.List.Count != 1 {
			t.Errorf("%s: staff-a with its token: %v", name, a)
		}
		u, h = carry(rooms+"/staff-b", staffA)
		if a := apiGet(t, "GET", u, h...); a.Code != 403 || !strings.Contains(a.List.Error, "does not open") {
			t.Errorf("%s: staff-b with a token for staff-a: %v", name, a)
		}
		u, h = carry(rooms+"/staff-a", expired)
		if a := apiGet(t, "GET", u, h...); a.Code != 401 || !strings.Contains(a.List.Error, "expired") {
			t.Errorf("%s: staff-a with an expired token: %v", name, a)
		}
		u, h = carry(rooms, "garbage")
		if a := apiGet(t, "GET", u, h...); a.Code != 401 || !strings.Contains(a.List.Error, "malformed") {
			t.Errorf("%s: GET /api/rooms with a malformed token: %v", name, a)
		}
	}
	if a := apiGet(t, "GET", rooms, "Authorization: Bearer "+boss); a.List.Total != 4 || !slices.Equal(a.names(), []string{"a-pub", "b-pub", "staff-a", "staff-b"}) {
		t.Errorf("GET /api/rooms with a token for every room: %v", a)
	}
	if a := apiGet(t, "GET", rooms+"?limit=1", "Authorization: Bearer "+docs); a.List.Total != 2 || !a.List.Truncated {
		t.Errorf("GET /api/rooms?limit=1 with a token for docs-* only: %v", a)
	}
	if a := apiGet(t, "GET", rooms+"/staff-b?token="+docs); a.Code != 403 {
		t.Errorf("staff-b with a token for docs-*: %v", a)
	}

	// A page of an allowed origin: the same rules, and a preflight lets it
	// send Authorization.
	origin := "Origin: " + site
	if a := apiGet(t, "GET", rooms, origin); a.List.Total != 2 || a.Header.Get("Access-Control-Allow-Origin") != site {
		t.Errorf("CORS GET /api/rooms without a token: %v %v", a, a.Header)
	}
	if a := apiGet(t, "GET", rooms+"/staff-a", origin); a.Code != 401 {
		t.Errorf("CORS private room without a token: %v", a)
	}
	p := apiGet(t, "OPTIONS", rooms+"/staff-a", origin, "Access-Control-Request-Method: GET", "Access-Control-Request-Headers: authorization")
	if p.Code != 204 || !strings.Contains(strings.ToLower(p.Header.Get("Access-Control-Allow-Headers")), "authorization") {
		t.Errorf("CORS preflight with Authorization: %v %v", p, p.Header)
	}
	if a := apiGet(t, "GET", rooms+"/staff-a", origin, "Authorization: Bearer "+staffA); a.Code != 200 || a.List.Count != 1 {
		t.Errorf("CORS private room with its token: %v", a)
	}
	if a := apiGet(t, "GET", rooms, origin, "Authorization: Bearer "+staffA); a.List.Total != 3 {
		t.Errorf("CORS GET /api/rooms with a token for staff-a: %v", a)
	}
}

// A signed-in stream ends with its token, at exp plus the allowed skew (5
// s), and is told so once shortly before: the count drops when it ends.
// Anonymous streams and longer tokens in the same room go on. Over each
// protocol: over HTTP/1.1, plain or TLS, the stream's timers end it.
func TestSignedStreamEndsWithToken(t *testing.T) {
	t.Parallel()
	forEachProto(t, func(t *testing.T, proto string) {
		const leeway = 5 * time.Second // main's
		s := startProto(t, proto, "--token-secret", testSecret, "--grace", "300ms")
		obs := s.open(t, "/rooms/exp/events") // anonymous
		long := s.open(t, "/rooms/exp/events?token="+token(t, testSecret, "long", "", nil))
		obs.waitCount(t, 2)

		exp := time.Now().Add(3 * time.Second).Unix()
		join := time.Now()
		short := s.open(t, "/rooms/exp/events?token="+token(t, testSecret, "short", "", jwt.MapClaims{"exp": exp}))
		obs.waitCount(t, 3)
		end := time.Unix(exp, 0).Add(leeway)
		warnAt := end.Add(-min(30*time.Second, end.Sub(join)/2))

		short.waitFor(t, end.Sub(join)+2*time.Second, "token-expiring", func() bool { return len(short.Events("token-expiring")) > 0 })
		warned := time.Now()
		if want := fmt.Sprintf(`{"ends_at_ms":%d}`, end.UnixMilli()); short.Events("token-expiring")[0] != want {
			t.Errorf("token-expiring data %s, want %s", short.Events("token-expiring")[0], want)
		}
		if warned.Before(warnAt.Add(-100*time.Millisecond)) || warned.After(warnAt.Add(time.Second)) {
			t.Errorf("warned %v before the end, want %v before it", end.Sub(warned).Round(time.Millisecond), end.Sub(warnAt).Round(time.Millisecond))
		}
		// The event is whole, and the stream goes on carrying counts.
		lines := short.Lines()
		if i := slices.Index(lines, "event: token-expiring"); i < 1 || lines[i-1] != "" || !strings.HasPrefix(lines[i+1], "data: ") || lines[i+2] != "" {
			t.Errorf("token-expiring is not an event of its own: %q", lines)
		}
		s.open(t, "/rooms/exp/events")
		short.waitCount(t, 4)

		short.waitEnd(t, time.Until(end)+2*time.Second)
		ended := time.Now()
		if d := ended.Sub(end); d < -100*time.Millisecond || d > time.Second {
			t.Errorf("the stream ended %v after exp+%v, want within [-0.1 s, 1 s]", d.Round(time.Millisecond), leeway)
		}
		t.Logf("warned %v before the end (want %v), ended %v after exp+%v",
			end.Sub(warned).Round(time.Millisecond), end.Sub(warnAt).Round(time.Millisecond), ended.Sub(end).Round(time.Millisecond), leeway)
		obs.waitCount(t, 3)
		if n := len(short.Events("token-expiring")); n != 1 {
			t.Errorf("%d token-expiring events, want 1", n)
		}
		if got := s.disconnectsAtLeast(t, "expired", 1); got != 1 {
			t.Errorf("disconnects for expired tokens: %v, want 1", got)
		}

		// The others are still there, and told nothing of it.
		select {
		case <-obs.done:
			t.Errorf("the anonymous stream ended: %v", obs.err)
		case <-long.done:
			t.Errorf("the stream with a long token ended: %v", long.err)
		default:
		}
		long.waitCount(t, 3)
		if n := len(obs.Events("token-expiring")) + len(long.Events("token-expiring")); n != 0 {
			t.Errorf("%d token-expiring events on the other streams", n)
		}
	})
}

// A signed-in GET /watch stream ends with its token too, told once before,
// and counted as expired; it gets its rooms' changes until then.
func TestSignedWatchEndsWithToken(t *testing.T) {
	t.Parallel()
	forEachProto(t, func(t *testing.T, proto string) {
		const leeway = 5 * time.Second // main's
		s := startProto(t, proto, "--token-secret", testSecret)
		exp := time.Now().Add(2 * time.Second).Unix()
		join := time.Now()
		w := s.open(t, "/watch?rooms=wx&token="+token(t, testSecret, "watcher", "", jwt.MapClaims{"exp": exp}))
		if w.Status != 200 {
			t.Fatalf("GET /watch with a token: %d", w.Status)
		}
		end := time.Unix(exp, 0).Add(leeway)
		s.open(t, "/rooms/wx/events")
		w.waitFor(t, 5*time.Second, "the room's change", func() bool {
			ev := w.Events("presence")
			return len(ev) > 0 && strings.Contains(ev[len(ev)-1], `"people":1`)
		})
		w.waitFor(t, end.Sub(join)+2*time.Second, "token-expiring", func() bool { return len(w.Events("token-expiring")) > 0 })
		if want := fmt.Sprintf(`{"ends_at_ms":%d}`, end.UnixMilli()); w.Events("token-expiring")[0] != want {
			t.Errorf("token-expiring data %s, want %s", w.Events("token-expiring")[0], want)
		}
		w.waitEnd(t, time.Until(end)+2*time.Second)
		if d := time.Since(end); d < -100*time.Millisecond || d > time.Second {
			t.Errorf("the watch ended %v after exp+%v, want within [-0.1 s, 1 s]", d.Round(time.Millisecond), leeway)
		}
		if n := len(w.Events("token-expiring")); n != 1 {
			t.Errorf("%d token-expiring events, want 1", n)
		}
		waitUntil(t, 5*time.Second, "one disconnect for an expired token", func() bool {
			return s.metric(t, `presence_disconnects_total{reason="expired"}`) == 1
		})
	})
}
