package handlers

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"
	"time"
)

// smallRouter is the router with cors and otherwise the options of
// newTestRouter, served by a real net/http server (which drops the body of
// a HEAD, as a recorder does not).
func smallRouter(t *testing.T, cors CORSOptions) (*httptest.Server, *Broadcaster) {
	t.Helper()
	opts := DefaultOptions()
	opts.Stream.Retry, opts.Stream.WriteTimeout, opts.RoomsLimit = time.Second, time.Second, 10
	opts.CORS = cors
	router, b := newTestRouterWith(t, opts, fstest.MapFS{"index.html": {Data: []byte("<h1>hi</h1>")}, "widget/a.js": {Data: []byte("1")}})
	srv := httptest.NewServer(router)
	t.Cleanup(func() {
		srv.Close()
		_ = b.Shutdown(context.Background())
	})
	return srv, b
}

// sample reads one sample of the router's /metrics; -1 if absent.
func sample(t *testing.T, srv *httptest.Server, name string) float64 {
	t.Helper()
	_, body := do(t, "GET", srv.URL+"/metrics")
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` (\S+)$`).FindStringSubmatch(body)
	if m == nil {
		return -1
	}
	v, _ := strconv.ParseFloat(m[1], 64)
	return v
}

func do(t *testing.T, method, url string, header ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

// Every GET route answers HEAD as GET does, without a body; a HEAD of a
// stream opens none.
func TestHeadAnswersAsGet(t *testing.T) {
	srv, b := smallRouter(t, CORSOptions{})
	for _, path := range []string{"/", "/widget.js", "/healthz", "/readyz", "/metrics", "/api/rooms", "/api/rooms/x", "/api/rooms/bad%20name", "/rooms/bad%20name/events"} {
		get, _ := do(t, "GET", srv.URL+path)
		head, body := do(t, "HEAD", srv.URL+path)
		if head.StatusCode != get.StatusCode || head.Header.Get("Content-Type") != get.Header.Get("Content-Type") || body != "" {
			t.Errorf("HEAD %s: %d %q body %q; GET: %d %q", path, head.StatusCode, head.Header.Get("Content-Type"), body, get.StatusCode, get.Header.Get("Content-Type"))
		}
	}
	for _, path := range []string{"/events", "/rooms/x/events"} {
		head, body := do(t, "HEAD", srv.URL+path)
		if head.StatusCode != 200 || head.Header.Get("Content-Type") != "text/event-stream" || head.Header.Get("Cache-Control") != "no-cache" || body != "" {
			t.Errorf("HEAD %s: %d %v body %q", path, head.StatusCode, head.Header, body)
		}
	}
	if n := b.hub.Stats().Streams; n != 0 {
		t.Errorf("HEAD left %d streams", n)
	}
	if n := sample(t, srv, "presence_connects_total"); n != 0 {
		t.Errorf("HEAD counted %v connects", n)
	}
}

// A method a path does not take gets 405, a JSON error and Allow.
func TestMethodNotAllowedSaysAllow(t *testing.T) {
	srv, _ := smallRouter(t, CORSOptions{})
	for path, allow := range map[string]string{
		"/metrics":        "GET, HEAD",
		"/events":         "GET, HEAD, OPTIONS",
		"/rooms/x/events": "GET, HEAD, OPTIONS",
		"/api/rooms/x":    "GET, HEAD, OPTIONS",
		"/":               "GET, HEAD",
	} {
		for _, method := range []string{"POST", "PUT", "DELETE", "PATCH"} {
			resp, body := do(t, method, srv.URL+path)
			if resp.StatusCode != 405 || resp.Header.Get("Allow") != allow || !isJSONError(body) {
				t.Errorf("%s %s: %d Allow %q %s; want 405 Allow %q and a JSON error", method, path, resp.StatusCode, resp.Header.Get("Allow"), body, allow)
			}
		}
	}
}

// headerSize counts an HTTP/1.1 header block to the byte.
func TestHeaderSizeIsTheWireSize(t *testing.T) {
	for _, raw := range []string{
		"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /rooms/x/events?visitor=0123 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nAccept: text/event-stream\r\nCookie: a=b; c=d\r\nCookie: e=f\r\nX-Empty: \r\n\r\n",
		"GET http://h/x HTTP/1.1\r\nHost: h\r\nUser-Agent: t\r\n\r\n",
		"HEAD /metrics HTTP/1.0\r\n\r\n",
		"POST /events HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n",
	} {
		r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(raw)))
		if err != nil {
			t.Fatalf("%q: %v", raw, err)
		}
		if got := headerSize(r); got != len(raw) {
			t.Errorf("headerSize(%q) = %d, want %d", raw, got, len(raw))
		}
	}
}

// The router answers 431 with a JSON error past the limit, not at it.
func TestLimitHeaders(t *testing.T) {
	h := limitHeaders(100)(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	for _, pad := range []int{0, 1} {
		raw := "GET / HTTP/1.1\r\nHost: h\r\nX: "
		raw += strings.Repeat("a", 100-len(raw)-4+pad) + "\r\n\r\n"
		r, _ := http.ReadRequest(bufio.NewReader(strings.NewReader(raw)))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		want := 200
		if pad == 1 {
			want = 431
		}
		if w.Code != want || (want == 431 && !isJSONError(w.Body.String())) {
			t.Errorf("%d bytes: %d %s, want %d", len(raw), w.Code, w.Body, want)
		}
	}
	if ServerMaxHeaderBytes(16384) <= 16384 {
		t.Error("the server's backstop must be above the limit")
	}
}

// Visitor ids are canonical: an upper-case copy is the same id.
func TestCanonicalVisitor(t *testing.T) {
	lower := "0123456789abcdef0123456789abcdef"
	for _, in := range []string{lower, strings.ToUpper(lower), "0123456789ABCDEF0123456789abcdef"} {
		if got, ok := canonicalVisitor(in); !ok || got != lower {
			t.Errorf("canonicalVisitor(%q) = %q, %v; want %q", in, got, ok, lower)
		}
	}
	for _, in := range []string{"", lower[1:], lower + "0", "0123456789abcdeg0123456789abcdef", "0x23456789abcdef0123456789abcdef"} {
		if _, ok := canonicalVisitor(in); ok {
			t.Errorf("canonicalVisitor(%q) accepted", in)
		}
	}
	r := httptest.NewRequest("GET", "/events?visitor="+strings.ToUpper(lower), nil)
	if id, ok := visitorID(r); !ok || id != lower {
		t.Errorf("?visitor= upper case: %q %v", id, ok)
	}
	r = httptest.NewRequest("GET", "/events", nil)
	r.AddCookie(&http.Cookie{Name: VisitorCookie, Value: strings.ToUpper(lower)})
	if id, ok := visitorID(r); !ok || id != lower {
		t.Errorf("cookie upper case: %q %v", id, ok)
	}
}

// With origins restricted, a stream request of another site's page that
// is not CORS (a frame, a link, an embed) is refused and counted; CORS
// requests, requests without fetch metadata and same-origin ones pass.
func TestCrossSiteGuard(t *testing.T) {
	const allowed = "https://ok.example"
	restricted, _ := smallRouter(t, CORSOptions{AllowedOrigins: []string{allowed}})
	open, _ := smallRouter(t, CORSOptions{AllowedOrigins: []string{"*"}})
	origin := func() float64 { return sample(t, restricted, `presence_refused_total{reason="origin"}`) }
	for _, c := range []struct {
		site, mode, origin string
		want               int
	}{
		{"cross-site", "navigate", "", 403},
		{"same-site", "navigate", "", 403},
		{"cross-site", "no-cors", "", 403},
		{"cross-site", "cors", allowed, 200},
		{"same-site", "cors", allowed, 200},
		{"cross-site", "cors", "https://evil.example", 403}, // by corsMiddleware
		{"same-origin", "navigate", "", 200},
		{"none", "navigate", "", 200},
		{"", "", "", 200},
	} {
		before := origin()
		var hdr []string
		for _, kv := range [][2]string{{"Sec-Fetch-Site", c.site}, {"Sec-Fetch-Mode", c.mode}, {"Origin", c.origin}} {
			if kv[1] != "" {
				hdr = append(hdr, kv[0], kv[1])
			}
		}
		for _, method := range []string{"HEAD", "GET"} {
			url := restricted.URL + "/rooms/x/events"
			if method == "GET" && c.want == 200 {
				break // a HEAD says as much without holding a stream
			}
			resp, body := do(t, method, url, hdr...)
			if resp.StatusCode != c.want || (c.want == 403 && method == "GET" && !isJSONError(body)) {
				t.Errorf("%s %v: %d %s, want %d", method, c, resp.StatusCode, body, c.want)
			}
		}
		if counted := origin() - before; (c.want == 403) != (counted > 0) {
			t.Errorf("%v: counted %v under origin", c, counted)
		}
		if resp, _ := do(t, "HEAD", open.URL+"/rooms/x/events", hdr...); resp.StatusCode != 200 {
			t.Errorf("with --allowed-origins *, %v: %d", c, resp.StatusCode)
		}
	}
	// The API is not a stream: a frame of it shows nothing to its page.
	if resp, _ := do(t, "GET", restricted.URL+"/api/rooms/x", "Sec-Fetch-Site", "cross-site", "Sec-Fetch-Mode", "navigate"); resp.StatusCode != 200 {
		t.Errorf("API navigated to from another site: %d", resp.StatusCode)
	}
}
