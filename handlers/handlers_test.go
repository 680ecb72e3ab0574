package handlers

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"
	"golang.org/x/net/http/httpguts"

	"github.com/presence/presence/presence"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func newTestRouter(t testing.TB) (http.Handler, *Broadcaster) {
	t.Helper()
	opts := DefaultOptions()
	opts.Stream.Retry, opts.Stream.WriteTimeout, opts.RoomsLimit = time.Second, time.Second, 10
	return newTestRouterWith(t, opts, fstest.MapFS{"index.html": {Data: []byte("<h1>hi</h1>")}})
}

// newTestRouterWith is the router with opts and the static files page,
// over an in-memory hub.
func newTestRouterWith(t testing.TB, opts Options, page fs.FS) (http.Handler, *Broadcaster) {
	t.Helper()
	reg := prometheus.NewRegistry()
	hub, err := presence.NewHub(presence.NewMemory(), presence.DefaultHubOptions())
	if err != nil {
		t.Fatal(err)
	}
	m := NewMetrics(reg, hub)
	b, err := NewBroadcaster(hub, time.Minute, m)
	if err != nil {
		t.Fatal(err)
	}
	router, err := NewRouter(b, opts, m, reg, page, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return router, b
}

func TestShutdownTurnsReadyzAndStreamsAway(t *testing.T) {
	router, b := newTestRouter(t)
	if w := serve(router, "GET", "/readyz", nil); w.Code != 200 {
		t.Fatalf("readyz before shutdown: %d", w.Code)
	}
	if err := b.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if w := serve(router, "GET", "/readyz", nil); w.Code != 503 {
		t.Fatalf("readyz while draining: %d", w.Code)
	}
	if w := serve(router, "GET", "/healthz", nil); w.Code != 200 {
		t.Fatalf("healthz while draining: %d", w.Code)
	}
	w := serve(router, "GET", "/events", nil)
	if w.Code != 503 || w.Header().Get("Retry-After") == "" || !isJSONError(w.Body.String()) {
		t.Fatalf("stream while draining: %d %q %s", w.Code, w.Header().Get("Retry-After"), w.Body)
	}
}

func TestPageAndMetrics(t *testing.T) {
	router, _ := newTestRouter(t)
	w := serve(router, "GET", "/", nil)
	if w.Code != 200 || w.Body.String() != "<h1>hi</h1>" || !strings.HasPrefix(w.Header().Get("Content-Type"), "text/html") {
		t.Fatalf("page: %d %q %s", w.Code, w.Header().Get("Content-Type"), w.Body)
	}
	w = serve(router, "GET", "/metrics", nil)
	for _, name := range []string{"presence_streams_open", "presence_rooms", "presence_watched_rooms", "presence_connects_total",
		"presence_disconnects_total", "presence_refused_total", "presence_events_published_total", "presence_deliveries_total"} {
		if !strings.Contains(w.Body.String(), name) {
			t.Errorf("metrics lack %s", name)
		}
	}
}

// flushRecorder is a ResponseRecorder that also takes write deadlines, as a
// real connection does. serve cancels the request first, so a stream ends
// as soon as it is set up (a GET of a stream answers an empty 200 then):
// these tests check routing, status and errors; streams themselves are
// exercised over real TCP by FuzzRequest and the end-to-end tests.
type flushRecorder struct{ *httptest.ResponseRecorder }

func (flushRecorder) SetWriteDeadline(time.Time) error { return nil }

func serve(h http.Handler, method, target string, header http.Header) *httptest.ResponseRecorder {
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // streams end as soon as they are set up
	r := httptest.NewRequestWithContext(ctx, method, target, nil)
	for k, v := range header {
		r.Header[k] = v
	}
	w := flushRecorder{httptest.NewRecorder()}
	h.ServeHTTP(w, r)
	return w.ResponseRecorder
}

func isJSONError(body string) bool {
	var e struct{ Error string }
	return json.Unmarshal([]byte(body), &e) == nil && e.Error != ""
}

// FuzzRequest sends arbitrary methods, paths and Last-Event-ID headers to
// the router served over real TCP. Every answer has a known status and an
// error is JSON; a stream is read up to its first event and then closed by
// the client, as a browser leaving does, so the stream loop runs and must end
// on the client's cancel. After each request no stream stays counted and no
// goroutine is left.
func FuzzRequest(f *testing.F) {
	for _, seed := range []struct{ method, path, lastID string }{
		{"GET", "/events", ""},
		{"GET", "/events", "abc"},
		{"GET", "/rooms/lobby/events", "12"},
		{"GET", "/rooms/a.b_c-D/events", "-1"},
		{"GET", "/rooms/bad%20name/events", ""},
		{"GET", "/rooms//events", ""},
		{"GET", "/rooms/" + strings.Repeat("x", 65) + "/events", ""},
		{"GET", "/api/rooms?limit=3", ""},
		{"GET", "/api/rooms?limit=-3", ""},
		{"GET", "/api/rooms/%00", ""},
		{"POST", "/events", ""},
		{"DELETE", "/api/rooms/x", ""},
		{"GET", "/../../etc/passwd", ""},
		{"GET", "/rooms/%2e%2e/events", "\xff"},
		{"HEAD", "/rooms/lobby/events", ""},
		{"OPTIONS", "/events", ""},
		{"GET", "/events?token=abc", ""},
	} {
		f.Add(seed.method, seed.path, seed.lastID)
	}
	router, b := newTestRouter(f)
	srv := httptest.NewUnstartedServer(router)
	srv.Config.ConnContext = ConnContext // plain HTTP/1.1 streams detach, as in main.go
	srv.Start()
	defer func() {
		// Close waits for every handler: after a stream that never
		// ended, leave it to goleak to report rather than hang.
		if !f.Failed() {
			srv.Close()
		}
	}()
	// The server's own goroutines, and the signal watcher a -fuzz worker
	// starts later.
	ignore := []goleak.Option{goleak.IgnoreCurrent(), goleak.IgnoreTopFunction("os/signal.NotifyContext.func1")}
	f.Fuzz(func(t *testing.T, method, path, lastID string) {
		switch method {
		case "GET", "POST", "PUT", "DELETE", "HEAD", "PATCH", "OPTIONS":
		default:
			method = "GET"
		}
		u, err := url.ParseRequestURI(path)
		if err != nil || !strings.HasPrefix(path, "/") || strings.ContainsAny(path, " \t\r\n") {
			return // not a request line a server could receive
		}
		if !httpguts.ValidHeaderFieldValue(lastID) {
			return // net/http refuses the request before the router sees it
		}
		status, body, stream := fuzzExchange(t, srv.Listener.Addr().String(), method, u.RequestURI(), lastID)
		switch {
		case status == 200 && stream:
			if !strings.HasPrefix(body, "retry: ") || !strings.Contains(body, "\ndata: ") {
				t.Fatalf("%s %s: stream began %q", method, path, body)
			}
		case status == 200, status == 204 && method == "OPTIONS":
		case status == 400, status == 401, status == 403, status == 404, status == 405:
			if method != "HEAD" && !isJSONError(body) {
				t.Fatalf("%s %s: %d with body %q", method, path, status, body)
			}
		default:
			t.Fatalf("%s %s: status %d %s", method, path, status, body)
		}
		// The handler ends once it sees the client gone: await it.
		for deadline := time.Now().Add(10 * time.Second); b.hub.Stats().Streams != 0; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s %s left %d streams counted", method, path, b.hub.Stats().Streams)
			}
		}
		goleak.VerifyNone(t, ignore...)
	})
}

// fuzzExchange sends one request on a connection of its own and returns the
// status and the body: all of it, or for an event stream the bytes up to the
// end of its first data event, after which it closes the connection.
func fuzzExchange(t *testing.T, addr, method, target, lastID string) (status int, body string, stream bool) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	header := ""
	if lastID != "" {
		header = "Last-Event-ID: " + lastID + "\r\n"
	}
	if _, err := fmt.Fprintf(conn, "%s %s HTTP/1.1\r\nHost: fuzz\r\n%sConnection: close\r\n\r\n", method, target, header); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, &http.Request{Method: method})
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" || method == "HEAD" {
		data, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("%s %s: reading the body: %v", method, target, err)
		}
		return resp.StatusCode, string(data), false
	}
	// Read whole lines up to the blank line that ends the first event with
	// data; a deadline error means the stream never sent one.
	var sb strings.Builder
	lines := bufio.NewReader(resp.Body)
	for data := false; ; {
		line, err := lines.ReadString('\n')
		sb.WriteString(line)
		if err != nil {
			t.Fatalf("%s %s: stream after %q: %v", method, target, sb.String(), err)
		}
		if strings.HasPrefix(line, "data: ") {
			data = true
		} else if line == "\n" && data {
			return resp.StatusCode, sb.String(), true
		}
	}
}
