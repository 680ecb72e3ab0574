package e2e

import (
	"bufio"
	"crypto/tls"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// rawRequest sends req (a whole request, as bytes) over a new TCP
// connection and returns the answer's status, headers and body.
func rawRequest(t *testing.T, addr, req string) (int, http.Header, string) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(conn, req); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("%.60q...: %v", req, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// jsonError reports whether body is {"error": "..."} and returns the text.
func jsonError(body string) (string, bool) {
	var e struct{ Error string }
	return e.Error, json.Unmarshal([]byte(body), &e) == nil && e.Error != ""
}

// Room names made only of dots are refused: "/rooms/../events" is what a
// browser turns into /events (the lobby), and curl --path-as-is or a proxy
// may send as it is.
func TestDotRoomsRefused(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	for _, room := range []string{".", "..", "...", strings.Repeat(".", 64)} {
		for _, path := range []string{"/rooms/" + room + "/events", "/api/rooms/" + room} {
			code, _, body := rawRequest(t, s.Addr, "GET "+path+" HTTP/1.1\r\nHost: "+s.Addr+"\r\nConnection: close\r\n\r\n")
			if msg, ok := jsonError(body); code != 400 || !ok || !strings.Contains(msg, "only dots") {
				t.Errorf("GET %s: %d %s, want 400 saying names are not only dots", path, code, body)
			}
		}
	}
	// Dots among other characters are fine.
	for _, room := range []string{"a.", ".a", "a..b"} {
		c := dial(t, s, "/rooms/"+room+"/events")
		c.waitCount(t, 1)
	}
	if code, _, body := get(t, s.URL+"/api/rooms"); code != 200 || !strings.Contains(body, `"total":3`) {
		t.Errorf("rooms after dot names: %d %s", code, body)
	}
}

// "[!x]" is negation in a shell, not to path.Match: it is refused in
// --private-rooms at start and in a token's rooms claim as claims invalid,
// so that it can neither open staff-x nor close staff-a by surprise.
func TestBangPatternsRefused(t *testing.T) {
	t.Parallel()
	err := launch(t, "--private-rooms", "ops, staff-[!x]").exit(t, 5*time.Second)
	if err == nil || !strings.Contains(err.Error(), "--private-rooms") || !strings.Contains(err.Error(), "[^...]") {
		t.Errorf("--private-rooms 'staff-[!x]': the service exited with %v, want an error at start that says to write [^...]", err)
	}

	s := startServer(t, "--token-secret", testSecret, "--private-rooms", "staff-[^x]")
	tok := token(t, testSecret, "a", "", jwt.MapClaims{"rooms": []string{"docs-*", "staff-[!x]"}})
	for _, room := range []string{"staff-a", "staff-x", "docs-1"} {
		code, _, body := get(t, s.URL+"/rooms/"+room+"/events?token="+tok)
		if msg, ok := jsonError(body); code != 401 || !ok || !strings.Contains(msg, "claims invalid") {
			t.Errorf("token with rooms [docs-*, staff-[!x]] on %s: %d %s, want 401 claims invalid", room, code, body)
		}
	}
	// "[^x]" is the negation: staff-x is public, staff-a private.
	if c := dial(t, s, "/rooms/staff-x/events"); c.Status != 200 {
		t.Errorf("staff-x under --private-rooms staff-[^x]: %d", c.Status)
	}
	if code, _, _ := get(t, s.URL+"/rooms/staff-a/events"); code != 401 {
		t.Errorf("staff-a under --private-rooms staff-[^x] without a token: %d", code)
	}
}

// HEAD answers on every GET route as GET would, without a body; a HEAD of
// a stream opens none and counts no one; /metrics takes GET and HEAD only.
func TestHeadAndMethods(t *testing.T) {
	t.Parallel()
	s := startServer(t, "--token-secret", testSecret, "--private-rooms", "staff-*")
	hc := &http.Client{Timeout: 5 * time.Second}
	defer hc.CloseIdleConnections()
	do := func(method, path string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest(method, s.URL+path, nil)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	for _, path := range []string{"/", "/widget.js", "/healthz", "/readyz", "/metrics", "/api/rooms", "/api/rooms/x", "/api/rooms/..", "/rooms/bad%20name/events", "/rooms/staff-1/events", "/nope"} {
		get, _ := do("GET", path)
		head, body := do("HEAD", path)
		if head.StatusCode != get.StatusCode || head.Header.Get("Content-Type") != get.Header.Get("Content-Type") || body != "" {
			t.Errorf("HEAD %s: %d %q %q; GET: %d %q", path, head.StatusCode, head.Header.Get("Content-Type"), body, get.StatusCode, get.Header.Get("Content-Type"))
		}
	}
	for range 3 {
		for _, path := range []string{"/events", "/rooms/x/events"} {
			head, body := do("HEAD", path)
			if head.StatusCode != 200 || head.Header.Get("Content-Type") != "text/event-stream" || body != "" {
				t.Errorf("HEAD %s: %d %v %q, want 200 with the stream's headers", path, head.StatusCode, head.Header, body)
			}
		}
	}
	if v := metric(t, s, "presence_connects_total"); v != 0 {
		t.Errorf("HEAD opened %v streams", v)
	}
	if _, _, body := get(t, s.URL+"/api/rooms"); !strings.Contains(body, `"total":0`) {
		t.Errorf("HEAD made a room: %s", body)
	}
	for _, method := range []string{"POST", "PUT", "DELETE", "PATCH", "OPTIONS"} {
		resp, body := do(method, "/metrics")
		if _, ok := jsonError(body); resp.StatusCode != 405 || !ok || resp.Header.Get("Allow") != "GET, HEAD" {
			t.Errorf("%s /metrics: %d Allow=%q %.80q, want 405, Allow GET, HEAD and a JSON error", method, resp.StatusCode, resp.Header.Get("Allow"), body)
		}
	}
	if resp, _ := do("POST", "/events"); resp.StatusCode != 405 || resp.Header.Get("Allow") != "GET, HEAD, OPTIONS" {
		t.Errorf("POST /events: %d Allow=%q", resp.StatusCode, resp.Header.Get("Allow"))
	}
}

// A page of a refused origin is counted under reason="origin", and so is
// a cross-site stream request that is not CORS (a frame of /events).
func TestRefusedOriginsCounted(t *testing.T) {
	t.Parallel()
	s := startServer(t, "--allowed-origins", "https://ok.example")
	stream := func(hdr ...string) (int, string) {
		code, _, body := rawRequest(t, s.Addr, "GET /rooms/w/events HTTP/1.1\r\nHost: "+s.Addr+"\r\n"+strings.Join(hdr, "")+"Connection: close\r\n\r\n")
		return code, body
	}
	if code, body := stream("Origin: https://evil.example\r\n"); code != 403 {
		t.Errorf("refused origin: %d %s", code, body)
	}
	waitUntil(t, 5*time.Second, "a refusal under origin", func() bool {
		return metric(t, s, `presence_refused_total{reason="origin"}`) == 1
	})
	// An <iframe> of another site: no Origin, mode navigate.
	if code, body := stream("Sec-Fetch-Site: cross-site\r\n", "Sec-Fetch-Mode: navigate\r\n", "Sec-Fetch-Dest: iframe\r\n"); code != 403 {
		t.Errorf("cross-site frame: %d %s", code, body)
	} else if _, ok := jsonError(body); !ok {
		t.Errorf("cross-site frame: %s, want a JSON error", body)
	}
	if v := metric(t, s, `presence_refused_total{reason="origin"}`); v != 2 {
		t.Errorf("refusals under origin: %v, want 2", v)
	}
	// The allowed origin's EventSource, the service's own page, a typed
	// URL and curl all pass.
	for _, hdr := range [][]string{
		{"Origin: https://ok.example\r\n", "Sec-Fetch-Site: cross-site\r\n", "Sec-Fetch-Mode: cors\r\n"},
		{"Sec-Fetch-Site: same-origin\r\n", "Sec-Fetch-Mode: cors\r\n"},
		{"Sec-Fetch-Site: none\r\n", "Sec-Fetch-Mode: navigate\r\n"},
		nil,
	} {
		c := dial(t, s, "/rooms/ok/events", strings.TrimSuffix(strings.Join(hdr, ""), "\r\n"))
		if c.Status != 200 {
			t.Errorf("%q: %d", hdr, c.Status)
		}
		c.Close()
	}
}

// An upper-case copy of a visitor id is the same person, by cookie or by
// ?visitor=.
func TestVisitorIDsIgnoreCase(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	id := "0123456789abcdef0123456789abcdef"
	a := dial(t, s, "/rooms/v/events?visitor="+id)
	a.waitCount(t, 1)
	b := dial(t, s, "/rooms/v/events?visitor="+strings.ToUpper(id))
	c := dial(t, s, "/rooms/v/events", "Cookie: presence_visitor="+strings.ToUpper(id[:16])+id[16:])
	waitPresence(t, c, 1, 3)
	b.waitCount(t, 1)
	if p := lastPresence(t, a); p.People != 1 {
		t.Errorf("the first stream sees %d people, want 1", p.People)
	}
}

// headerRequest is a GET of /healthz whose header block, as HTTP/1.1
// carries it, is exactly size bytes.
func headerRequest(t *testing.T, host string, size int) string {
	t.Helper()
	head := "GET /healthz HTTP/1.1\r\nHost: " + host + "\r\nX-Pad: "
	n := size - len(head) - len("\r\n\r\n")
	if n < 0 {
		t.Fatalf("size %d too small", size)
	}
	req := head + strings.Repeat("p", n) + "\r\n\r\n"
	if len(req) != size {
		t.Fatalf("built %d bytes, want %d", len(req), size)
	}
	return req
}

// --max-header-bytes is exact over HTTP/1.1: a header block of that many
// bytes passes, one byte more gets 431 with a JSON error (net/http alone
// lets 4096 bytes more through).
func TestHeaderLimitExactHTTP1(t *testing.T) {
	t.Parallel()
	s := startServer(t) // default: 16384
	for _, c := range []struct{ size, want int }{
		{16384, 200},
		{16385, 431},
		{16384 + 4096, 431},
		{1024, 200},
	} {
		code, h, body := rawRequest(t, s.Addr, headerRequest(t, s.Addr, c.size))
		if code != c.want {
			t.Errorf("%d bytes of header: %d %s, want %d", c.size, code, body, c.want)
			continue
		}
		if _, ok := jsonError(body); code == 431 && (!ok || h.Get("Content-Type") != "application/json") {
			t.Errorf("%d bytes of header: 431 with %q %s, want a JSON error", c.size, h.Get("Content-Type"), body)
		}
	}
	s2 := startServer(t, "--max-header-bytes", "2000")
	for size, want := range map[int]int{2000: 200, 2001: 431} {
		if code, _, body := rawRequest(t, s2.Addr, headerRequest(t, s2.Addr, size)); code != want {
			t.Errorf("--max-header-bytes 2000, %d bytes: %d %s, want %d", size, code, body, want)
		}
	}
	// Far past the limit net/http's own backstop answers (431, not JSON).
	if code, _, _ := rawRequest(t, s.Addr, headerRequest(t, s.Addr, 64<<10)); code != 431 {
		t.Errorf("64 KiB of header: %d, want 431", code)
	}
}

// The same limit, counted the same way, over HTTP/2: the fields the server
// receives (pseudo-headers as the request line and Host) add up to the
// limit at most.
func TestHeaderLimitExactHTTP2(t *testing.T) {
	t.Parallel()
	cert, key, _ := selfSigned(t, t.TempDir())
	url := startTLSServer(t, cert, key)
	host := strings.TrimPrefix(url, "https://")
	tr := &http.Transport{
		TLSClientConfig:    &tls.Config{InsecureSkipVerify: true},
		ForceAttemptHTTP2:  true,
		DisableCompression: true, // no Accept-Encoding: the test knows every field
	}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	// As HTTP/1.1 would carry it: request line, Host, User-Agent, X-Pad,
	// the empty line.
	fixed := len("GET /healthz HTTP/2.0\r\n") + len("Host: "+host+"\r\n") + len("User-Agent: t\r\n") + len("X-Pad: \r\n") + len("\r\n")
	for _, c := range []struct{ size, want int }{{16384, 200}, {16385, 431}, {16384 + 2048, 431}} {
		req, _ := http.NewRequest("GET", url+"/healthz", nil)
		req.Header.Set("User-Agent", "t")
		req.Header.Set("X-Pad", strings.Repeat("p", c.size-fixed))
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatalf("%d bytes: %v", c.size, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.ProtoMajor != 2 {
			t.Fatalf("answered over %s, want HTTP/2", resp.Proto)
		}
		if _, ok := jsonError(string(body)); resp.StatusCode != c.want || (c.want == 431 && !ok) {
			t.Errorf("HTTP/2, %d bytes of header: %d %s, want %d (431 with a JSON error)", c.size, resp.StatusCode, body, c.want)
		}
	}
}
