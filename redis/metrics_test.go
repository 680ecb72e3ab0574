package redis

import (
	"context"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/presence/presence/internal/redistest"
	"github.com/presence/presence/presence"
)

// The backend registers its metrics itself, under the names and types that
// dashboards and the README know, and they follow what it does.
func TestMetrics(t *testing.T) {
	srv := redistest.Start(t)
	reg := prometheus.NewRegistry()
	b, err := New(Options{URL: srv.URL(), NodeID: "m", NodeTimeout: testTimeout, Metrics: reg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.rdb.Close() })
	scrape := func() string {
		rec := httptest.NewRecorder()
		promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		return rec.Body.String()
	}
	value := func(name string) float64 {
		t.Helper()
		for line := range strings.Lines(scrape()) {
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), name+" "); ok {
				f, err := strconv.ParseFloat(v, 64)
				if err != nil {
					t.Fatalf("%s: %v", line, err)
				}
				return f
			}
		}
		t.Fatalf("no %s in:\n%s", name, scrape())
		return 0
	}
	text := scrape()
	for _, want := range []string{
		"# TYPE presence_redis_commands_total counter",
		"# TYPE presence_redis_errors_total counter",
		"# TYPE presence_redis_resyncs_total counter",
		"# TYPE presence_redis_degraded gauge",
	} {
		if !strings.Contains(text, want+"\n") {
			t.Errorf("no %q in:\n%s", want, text)
		}
	}
	if n := strings.Count(text, "# TYPE "); n != 4 {
		t.Errorf("%d metrics, want 4:\n%s", n, text)
	}
	if v := value("presence_redis_degraded"); v != 1 {
		t.Errorf("degraded = %v before the first read of Redis, want 1", v)
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); b.Run(ctx, nil, nil) }()
	t.Cleanup(func() { cancel(); <-done })
	b.Join("r", presence.Member{})
	waitFor(t, 5*time.Second, "healthy", func() bool { return b.Health() == nil })
	if v := value("presence_redis_degraded"); v != 0 {
		t.Errorf("degraded = %v once healthy, want 0", v)
	}
	if v := value("presence_redis_commands_total"); v < 2 {
		t.Errorf("commands_total = %v after a tick and a read, want at least 2", v)
	}
	if v := value("presence_redis_resyncs_total"); v < 1 {
		t.Errorf("resyncs_total = %v after the first read, want at least 1", v)
	}
	srv.Stop()
	waitFor(t, 5*time.Second, "degraded", func() bool { return value("presence_redis_degraded") == 1 })
	if v := value("presence_redis_errors_total"); v < 1 {
		t.Errorf("errors_total = %v during an outage, want the errors counted", v)
	}
}
