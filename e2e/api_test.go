package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const testAPIKey = "e2e-api-key-0123456789abcdef"

// serverCall sends method url with the API key key as Bearer ("" for no
// Authorization) and body, and returns the status and body.
func serverCall(t *testing.T, method, url, key, body string) (int, string) {
	t.Helper()
	var headers []string
	if key != "" {
		headers = append(headers, "Authorization: Bearer "+key)
	}
	resp, b := send(t, method, url, body, headers...)
	return resp.StatusCode, string(b)
}

// send sends method url with body and header lines ("Name: value") on a
// connection of its own, and returns the answer and its body.
func send(t *testing.T, method, url, body string, headers ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ": ")
		req.Header.Set(k, v)
	}
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// waitEnded waits until the server has ended every stream of ended,
// within timeout, and checks that it has ended none of open; it returns
// how long the wait took.
func waitEnded(t *testing.T, timeout time.Duration, ended []*sseClient, open ...*sseClient) time.Duration {
	t.Helper()
	start := time.Now()
	for _, c := range ended {
		c.waitEnd(t, timeout-time.Since(start))
	}
	took := time.Since(start)
	for _, c := range open {
		select {
		case <-c.done:
			t.Error("a stream that should stay open was closed too")
		default:
		}
	}
	return took
}

// disconnectAnswer is the answer of a disconnect.
type disconnectAnswer struct {
	ClosedHere int    `json:"closed_here"`
	OthersTold bool   `json:"others_told"`
	BlockedS   int    `json:"blocked_s"`
	Error      string `json:"error"`
}

// postDisconnect POSTs body to a disconnect url with the key, and returns
// the answer, which must be a 200.
func postDisconnect(t *testing.T, url, body string) disconnectAnswer {
	t.Helper()
	code, body := serverCall(t, "POST", url, testAPIKey, body)
	var a disconnectAnswer
	if err := json.Unmarshal([]byte(body), &a); err != nil || code != 200 {
		t.Fatalf("disconnect: %d %s", code, body)
	}
	return a
}

// The server API over real TCP: every endpoint answers 401 with a JSON
// error saying why without the key, with a wrong one, and on a server with
// no key configured; with the key, it answers. A user's token is not the
// key.
func TestServerAPIKeys(t *testing.T) {
	t.Parallel()
	on := startServer(t, "--api-key", testAPIKey, "--token-secret", testSecret)
	off := startServer(t, "--token-secret", testSecret)
	userToken := token(t, testSecret, "alice", "", nil)
	for _, e := range []struct{ method, path, body string }{
		{"GET", "/api/rooms/r/members", ""},
		{"POST", "/api/users/alice/disconnect", `{"block_s": 0}`},
		{"POST", "/api/rooms/r/disconnect", ""},
		{"GET", "/api/openapi.json", ""},
	} {
		for _, tc := range []struct {
			s          *testServer
			key, wants string
		}{
			{on, "", "needs the API key"},
			{on, testAPIKey + "0", "wrong API key"},
			{on, strings.ToUpper(testAPIKey), "wrong API key"},
			{on, userToken, "wrong API key"},
			{off, testAPIKey, "no API key is configured"},
			{off, "", "no API key is configured"},
		} {
			code, body := serverCall(t, e.method, tc.s.URL+e.path, tc.key, e.body)
			msg, ok := jsonError(body)
			if code != 401 || !ok || !strings.Contains(msg, tc.wants) {
				t.Errorf("%s %s with %.12q...: %d %s; want 401 saying %q", e.method, e.path, tc.key, code, body, tc.wants)
			}
		}
		if code, body := serverCall(t, e.method, on.URL+e.path, testAPIKey, e.body); code != 200 {
			t.Errorf("%s %s with the key: %d %s", e.method, e.path, code, body)
		}
	}
	code, body := serverCall(t, "GET", on.URL+"/api/openapi.json", testAPIKey, "")
	if code != 200 || !strings.Contains(body, `"openapi"`) || !strings.Contains(body, `"/api/users/{id}/disconnect"`) {
		t.Errorf("GET /api/openapi.json: %d %.200s", code, body)
	}
}

// With the key, GET /api/rooms and /api/rooms/{room} show private rooms,
// and their members; without it they stay hidden, as before.
func TestServerAPISeesPrivateRooms(t *testing.T) {
	t.Parallel()
	s := startServer(t, "--api-key", testAPIKey, "--token-secret", testSecret, "--private-rooms", "staff-*")
	staff := token(t, testSecret, "ann", "Ann", jwt.MapClaims{"rooms": []string{"staff-*"}})
	c := dial(t, s, "/rooms/staff-1/events", "Authorization: Bearer "+staff)
	c.waitCount(t, 1)
	if code, body := serverCall(t, "GET", s.URL+"/api/rooms", testAPIKey, ""); code != 200 || !strings.Contains(body, `"room":"staff-1"`) || !strings.Contains(body, `"total":1`) {
		t.Errorf("GET /api/rooms with the key: %d %s; want staff-1 listed", code, body)
	}
	if code, body := serverCall(t, "GET", s.URL+"/api/rooms", "", ""); code != 200 || strings.Contains(body, "staff-1") || !strings.Contains(body, `"total":0`) {
		t.Errorf("GET /api/rooms without the key: %d %s; want staff-1 hidden", code, body)
	}
	if code, body := serverCall(t, "GET", s.URL+"/api/rooms/staff-1", testAPIKey, ""); code != 200 || !strings.Contains(body, `"count":1`) {
		t.Errorf("GET /api/rooms/staff-1 with the key: %d %s", code, body)
	}
	for _, key := range []string{"", testAPIKey + "x"} {
		if code, body := serverCall(t, "GET", s.URL+"/api/rooms/staff-1", key, ""); code != 401 {
			t.Errorf("GET /api/rooms/staff-1 with %.8q: %d %s; want 401", key, code, body)
		}
	}
	if p := members(t, s, "staff-1", ""); len(p.Members) != 1 || p.Members[0].ID != "ann" || p.Members[0].Name != "Ann" || p.Next != nil {
		t.Errorf("staff-1's members: %+v; want ann alone", p)
	}
}

// On one node: a room's disconnect closes its streams, and no other
// room's; the streams end with the reason disconnected, and their people
// leave at once, though they had earned a grace.
func TestServerAPIRoomDisconnect(t *testing.T) {
	t.Parallel()
	const grace = 2 * time.Second
	s := startServer(t, "--api-key", testAPIKey, "--token-secret", testSecret, "--grace", grace.String())
	var inR []*sseClient
	for _, h := range []string{visitorCookie(), visitorCookie(), "Authorization: Bearer " + token(t, testSecret, "bob", "Bob", nil)} {
		inR = append(inR, dial(t, s, "/rooms/r/events", h))
	}
	other := dial(t, s, "/rooms/q/events")
	for _, c := range inR {
		c.waitCount(t, 3)
	}
	time.Sleep(grace + 100*time.Millisecond) // the streams earn their grace: nothing to await but time
	start := time.Now()
	a := postDisconnect(t, s.URL+"/api/rooms/r/disconnect", "")
	if a.ClosedHere != 3 || a.OthersTold {
		t.Errorf("answer %+v; want 3 closed here, no others (one node)", a)
	}
	waitEnded(t, time.Second, inR, other)
	t.Logf("the room's 3 streams ended %v after the call", time.Since(start).Round(time.Millisecond))
	if n := metricAtLeast(t, s, `presence_disconnects_total{reason="disconnected"}`, 3); n != 3 {
		t.Errorf("disconnects with reason disconnected: %v, want 3", n)
	}
	waitUntil(t, grace/2, "room r empty, with no grace", func() bool { return apiCount(t, s, "r") == 0 })
}

// Over HTTP/1.1 and HTTP/2 alike, a user's disconnect ends their room
// stream and their watch, and over HTTP/2 only those streams, not the
// connection that carries someone else's too.
func TestServerAPIDisconnectOverEachProtocol(t *testing.T) {
	forEachProto(t, func(t *testing.T, proto string) {
		p := startProto(t, proto, "--api-key", testAPIKey, "--token-secret", testSecret)
		tok := func(u string) string { return token(t, testSecret, u, "", nil) }
		alice := []*sseClient{p.open(t, "/rooms/r/events?token="+tok("alice")), p.open(t, "/watch?rooms=q&token="+tok("alice"))}
		bob := p.open(t, "/rooms/r/events?token="+tok("bob"))
		bob.waitCount(t, 2)
		req, err := http.NewRequest("POST", p.URL+"/api/users/alice/disconnect", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+testAPIKey)
		tr := p.h1
		if tr == nil {
			tr = &http.Transport{}
			defer tr.CloseIdleConnections()
		}
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("disconnect: %d", resp.StatusCode)
		}
		waitEnded(t, time.Second, alice, bob)
		bob.waitCount(t, 1)
		if n := p.disconnectsAtLeast(t, "disconnected", 2); n != 2 {
			t.Errorf("disconnects with reason disconnected: %v, want 2", n)
		}
	})
}
