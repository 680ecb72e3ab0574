package handlers

import (
	"context"
	"encoding/json"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/presence/presence/presence"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func newTestRouter(t testing.TB) (http.Handler, *Broadcaster) {
	t.Helper()
	opts := Options{Stream: StreamOptions{Retry: time.Second, WriteTimeout: time.Second}, RoomsLimit: 10}
	return newTestRouterWith(t, opts, fstest.MapFS{"index.html": {Data: []byte("<h1>hi</h1>")}})
}

// newTestRouterWith is the router with opts and the static files page,
// over an in-memory hub.
func newTestRouterWith(t testing.TB, opts Options, page fs.FS) (http.Handler, *Broadcaster) {
	t.Helper()
	reg := prometheus.NewRegistry()
	hub, err := presence.NewHub(presence.NewMemory(), presence.HubOptions{})
	if err != nil {
		t.Fatal(err)
	}
	m := NewMetrics(reg, hub)
	b, err := NewBroadcaster(hub, time.Minute, m)
	if err != nil {
		t.Fatal(err)
	}
	return NewRouter(b, opts, m, reg, page, slog.New(slog.NewTextHandler(io.Discard, nil))), b
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
	for _, name := range []string{"presence_streams_open", "presence_rooms", "presence_connects_total",
		"presence_disconnects_total", "presence_refused_total", "presence_events_published_total", "presence_deliveries_total"} {
		if !strings.Contains(w.Body.String(), name) {
			t.Errorf("metrics lack %s", name)
		}
	}
}

// flushRecorder is a ResponseRecorder that also takes write deadlines, as a
// real connection does, so that a stream goes all the way into its loop.
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

// FuzzRequest sends arbitrary paths, methods and Last-Event-ID headers: the
// answer is a known status, errors are JSON, and no stream stays counted.
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
	} {
		f.Add(seed.method, seed.path, seed.lastID)
	}
	router, b := newTestRouter(f)
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
		h := http.Header{}
		if lastID != "" {
			h.Set("Last-Event-ID", lastID)
		}
		w := serve(router, method, u.RequestURI(), h)
		switch w.Code {
		case 200:
		case 400, 404, 405:
			if method != "HEAD" && !isJSONError(w.Body.String()) {
				t.Fatalf("%s %s: %d with body %q", method, path, w.Code, w.Body)
			}
		default:
			t.Fatalf("%s %s: status %d %s", method, path, w.Code, w.Body)
		}
		if n := b.hub.Stats().Streams; n != 0 {
			t.Fatalf("%s %s left %d streams counted", method, path, n)
		}
	})
}
