package handlers

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/presence/presence/presence"
)

const testAPIKey = "0123456789abcdef-test-key"

// apiRouter is the router with the API key key ("" for none) and private
// rooms staff-*.
func apiRouter(t *testing.T, key string) (http.Handler, *Broadcaster) {
	t.Helper()
	opts := DefaultOptions()
	opts.APIKey = key
	opts.Stream.Identity.Private = []string{"staff-*"}
	return newTestRouterWith(t, opts, fstest.MapFS{"index.html": {Data: []byte("<h1>hi</h1>")}})
}

// call sends method target with the Bearer auth (none if "") and body.
func call(h http.Handler, method, target, auth, body string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, target, strings.NewReader(body))
	if auth != "" {
		r.Header.Set("Authorization", "Bearer "+auth)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

var serverAPI = []struct{ method, target string }{
	{"GET", "/api/rooms/r/members"},
	{"HEAD", "/api/rooms/r/members"},
	{"POST", "/api/users/alice/disconnect"},
	{"POST", "/api/rooms/r/disconnect"},
	{"GET", "/api/openapi.json"},
}

// The server API answers 401 with a JSON error that says why, unless the
// request carries the key: none configured, none sent, a wrong one.
func TestServerAPIKey(t *testing.T) {
	off, _ := apiRouter(t, "")
	on, _ := apiRouter(t, testAPIKey)
	for _, e := range serverAPI {
		for _, tc := range []struct {
			router     http.Handler
			auth, want string
		}{
			{off, "", "no API key is configured"},
			{off, testAPIKey, "no API key is configured"},
			{on, "", "needs the API key"},
			{on, testAPIKey + "x", "wrong API key"},
			{on, testAPIKey[:len(testAPIKey)-1], "wrong API key"},
		} {
			w := call(tc.router, e.method, e.target, tc.auth, "")
			if w.Code != 401 || e.method != "HEAD" && !strings.Contains(w.Body.String(), tc.want) || w.Header().Get("WWW-Authenticate") == "" {
				t.Errorf("%s %s with %q: %d %s; want 401 saying %q", e.method, e.target, tc.auth, w.Code, w.Body, tc.want)
			}
		}
		if w := call(on, e.method, e.target, testAPIKey, ""); w.Code != 200 {
			t.Errorf("%s %s with the key: %d %s", e.method, e.target, w.Code, w.Body)
		}
	}
}

// With the key, GET /api/rooms and /api/rooms/{room} show private rooms;
// without it, nothing changes.
func TestServerSeesPrivateRooms(t *testing.T) {
	router, b := apiRouter(t, testAPIKey)
	st, _, err := b.hub.JoinAs("staff-1", presence.Member{ID: "u:a", Signed: true}, presence.JoinOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Leave()
	if w := call(router, "GET", "/api/rooms", testAPIKey, ""); !strings.Contains(w.Body.String(), `"room":"staff-1"`) {
		t.Errorf("GET /api/rooms with the key: %d %s; want staff-1 listed", w.Code, w.Body)
	}
	if w := call(router, "GET", "/api/rooms", "", ""); w.Code != 200 || strings.Contains(w.Body.String(), "staff-1") {
		t.Errorf("GET /api/rooms without the key: %d %s; want staff-1 left out", w.Code, w.Body)
	}
	if w := call(router, "GET", "/api/rooms/staff-1", testAPIKey, ""); w.Code != 200 || !strings.Contains(w.Body.String(), `"count":1`) {
		t.Errorf("GET /api/rooms/staff-1 with the key: %d %s", w.Code, w.Body)
	}
	if w := call(router, "GET", "/api/rooms/staff-1", "", ""); w.Code != 401 {
		t.Errorf("GET /api/rooms/staff-1 without the key: %d %s; want 401", w.Code, w.Body)
	}
	if w := call(router, "GET", "/api/rooms/staff-1", "not-the-key-nor-a-token", ""); w.Code != 401 {
		t.Errorf("GET /api/rooms/staff-1 with a wrong key: %d %s; want 401, as a bad token", w.Code, w.Body)
	}
}

// Bad limits, cursors, user ids and bodies get 400 saying which.
func TestServerAPIBadInput(t *testing.T) {
	router, b := apiRouter(t, testAPIKey)
	for _, tc := range []struct{ method, target, body, want string }{
		{"GET", "/api/rooms/r/members?limit=0", "", "limit"},
		{"GET", "/api/rooms/r/members?limit=1001", "", "limit"},
		{"GET", "/api/rooms/r/members?limit=x", "", "limit"},
		{"GET", "/api/rooms/r/members?limit=", "", "limit"},
		{"GET", "/api/rooms/r/members?after=", "", "after"},
		{"GET", "/api/rooms/r/members?after=a%00b", "", "after"},
		{"GET", "/api/rooms/r/members?after=" + strings.Repeat("a", 257), "", "after"},
		{"GET", "/api/rooms/a%20b/members", "", "room names"},
		{"POST", "/api/rooms/a%20b/disconnect", "", "room names"},
		{"POST", "/api/users/a%00b/disconnect", "", "user id"},
		{"POST", "/api/users/alice/disconnect", "{", "body"},
		{"POST", "/api/users/alice/disconnect", `{"block":60}`, "body"},
		{"POST", "/api/users/alice/disconnect", `{"block_s":60}{}`, "body"},
		{"POST", "/api/users/alice/disconnect", `{"block_s":-1}`, "block_s"},
		{"POST", "/api/users/alice/disconnect", `{"block_s":1.5}`, "block_s"},
		{"POST", "/api/users/alice/disconnect", `{"block_s":86401}`, "block_s"},
		{"POST", "/api/users/alice/disconnect", `{"block_s":"60"}`, "body"},
		{"POST", "/api/users/alice/disconnect", `{"block_s":60,"pad":"` + strings.Repeat("x", 1100) + `"}`, "body"},
	} {
		w := call(router, tc.method, tc.target, testAPIKey, tc.body)
		var e struct{ Error string }
		if w.Code != 400 || json.Unmarshal(w.Body.Bytes(), &e) != nil || !strings.Contains(e.Error, tc.want) {
			t.Errorf("%s %s %.40s: %d %s; want 400 saying %q", tc.method, tc.target, tc.body, w.Code, w.Body, tc.want)
		}
	}
	// Ids as tokens have them, escaped in the path as they must be: the
	// disconnect finds their stream.
	for target, id := range map[string]string{
		"/api/users/a%25b/disconnect":  "a%b",
		"/api/users/a%2Fb/disconnect":  "a/b",
		"/api/users/%C3%A9/disconnect": "é",
		"/api/users/a%20b/disconnect":  "a b",
	} {
		st, _, err := b.hub.JoinAs("r", presence.Member{ID: "u:" + id, Signed: true}, presence.JoinOptions{End: func() {}})
		if err != nil {
			t.Fatal(err)
		}
		if w := call(router, "POST", target, testAPIKey, ""); w.Code != 200 || !strings.Contains(w.Body.String(), `"closed_here":1`) {
			t.Errorf("POST %s: %d %s; want 200, and %q's stream closed", target, w.Code, w.Body, id)
		}
		st.Leave()
	}
	for _, body := range []string{"", " \n", "{}", `{"block_s":0}`, `{"block_s":60}`, "null"} {
		if w := call(router, "POST", "/api/users/alice/disconnect", testAPIKey, body); w.Code != 200 {
			t.Errorf("POST /api/users/alice/disconnect %q: %d %s; want 200", body, w.Code, w.Body)
		}
	}
}

// A user's disconnect ends their streams through the hub and answers what
// it did; the block then refuses their streams with 403.
func TestServerDisconnectAnswers(t *testing.T) {
	router, b := apiRouter(t, testAPIKey)
	ended := make(chan struct{}, 2)
	for range 2 {
		st, _, err := b.hub.JoinAs("r", presence.Member{ID: "u:alice", Signed: true}, presence.JoinOptions{End: func() { ended <- struct{}{} }})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Leave()
	}
	w := call(router, "POST", "/api/users/alice/disconnect", testAPIKey, `{"block_s": 60}`)
	var got disconnectAnswer
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil || w.Code != 200 || got != (disconnectAnswer{ClosedHere: 2, BlockedS: 60}) {
		t.Fatalf("disconnect: %d %s", w.Code, w.Body)
	}
	for range 2 {
		select {
		case <-ended:
		case <-time.After(time.Second):
			t.Fatal("a stream's End was not called")
		}
	}
	if _, _, err := b.hub.JoinAs("r", presence.Member{ID: "u:alice", Signed: true}, presence.JoinOptions{}); err == nil {
		t.Fatal("a blocked user joined")
	}
	if w := call(router, "POST", "/api/rooms/r/disconnect", testAPIKey, ""); w.Code != 200 || !strings.Contains(w.Body.String(), `"closed_here":0`) {
		t.Errorf("the room's disconnect after: %d %s; want 200 and none closed (they were ended already)", w.Code, w.Body)
	}
}

// A method the server API's paths do not take gets 405 and Allow, key or
// not, as every other path.
func TestServerAPIMethods(t *testing.T) {
	router, _ := apiRouter(t, testAPIKey)
	for path, allow := range map[string]string{
		"/api/rooms/r/members":        "GET, HEAD",
		"/api/users/alice/disconnect": "POST",
		"/api/rooms/r/disconnect":     "POST",
		"/api/openapi.json":           "GET, HEAD",
	} {
		for _, method := range []string{"PUT", "DELETE", "GET", "POST"} {
			if strings.Contains(allow, method) {
				continue
			}
			w := call(router, method, path, "", "")
			if w.Code != 405 || w.Header().Get("Allow") != allow || !isJSONError(w.Body.String()) {
				t.Errorf("%s %s: %d Allow %q %s; want 405 Allow %q", method, path, w.Code, w.Header().Get("Allow"), w.Body, allow)
			}
		}
	}
}
