package handlers

import (
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/presence/presence/internal/option"
	"github.com/presence/presence/presence"
)

// NewRouter and NewBroadcaster refuse, each by its field or parameter, the
// options that cannot work, and take DefaultOptions as they are.
func TestNewRouterRefusesOptionsByName(t *testing.T) {
	hub, err := presence.NewHub(presence.NewMemory(), presence.DefaultHubOptions())
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg, hub)
	if _, err := NewBroadcaster(hub, 0, m); err == nil || err.Error() != "heartbeat must be positive, got 0s" {
		t.Errorf("heartbeat 0: got %v", err)
	}
	b, err := NewBroadcaster(hub, time.Minute, m)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = b.Shutdown(t.Context()) }()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, tc := range []struct {
		set  func(*Options)
		want []string // each refused option's message
	}{
		{func(*Options) {}, nil},
		{func(o *Options) {
			o.CORS.AllowedOrigins = []string{"*", "https://a.example/", "http://b.example:8080"}
			o.Stream.Identity.Private = []string{"staff-*", "[^x]"}
			o.Stream.TrustedProxies = []string{"10.0.0.0/8", "::1"}
			o.RoomsLimit, o.MaxHeaderBytes = MaxRoomsLimit, MinHeaderBytes
		}, nil},
		{func(o *Options) { o.Stream.Retry = 0 }, []string{"Stream.Retry must be positive, got 0s"}},
		{func(o *Options) { o.Stream.WriteTimeout = -time.Second }, []string{"Stream.WriteTimeout must be positive, got -1s"}},
		{func(o *Options) { o.RoomsLimit = 0 }, []string{"RoomsLimit must be from 1 to 1000, got 0"}},
		{func(o *Options) { o.RoomsLimit = MaxRoomsLimit + 1 }, []string{"RoomsLimit must be from 1 to 1000, got 1001"}},
		{func(o *Options) { o.MaxHeaderBytes = 0 }, []string{"MaxHeaderBytes must be at least 1024, got 0"}},
		{func(o *Options) { o.Stream.MaxWatch = 0 }, []string{"Stream.MaxWatch must be at least 1, got 0"}},
		{func(o *Options) {
			o.CORS.AllowedOrigins = []string{"https://ok.example", "docs.example.com", "https://x.example/path"}
		}, []string{
			`CORS.AllowedOrigins: "docs.example.com" is not an origin such as https://example.com`,
			`CORS.AllowedOrigins: "https://x.example/path" is not an origin such as https://example.com`,
		}},
		{func(o *Options) { o.Stream.Identity.Private = []string{"ok-*", "staff-[!x]"} }, []string{
			`Stream.Identity.Private: "staff-[!x]" is not a room pattern: syntax error in pattern: a class opened by "[!" is not negation here`,
		}},
		{func(o *Options) { o.Stream.TrustedProxies = []string{"10.0.0.0/40"} }, []string{
			`Stream.TrustedProxies: "10.0.0.0/40" is not a CIDR such as 10.0.0.0/8 or fd00::/8, nor an address`,
		}},
	} {
		opts := DefaultOptions()
		tc.set(&opts)
		router, err := NewRouter(b, opts, m, reg, fstest.MapFS{}, log)
		if tc.want == nil {
			if err != nil || router == nil {
				t.Errorf("%+v: %v", opts, err)
			}
			continue
		}
		var oe *option.Error
		if err == nil || !errors.As(err, &oe) {
			t.Errorf("%+v: got %v, want *option.Errors", opts, err)
			continue
		}
		got := strings.Split(err.Error(), "\n")
		if len(got) != len(tc.want) {
			t.Errorf("%+v: got %q, want %q", opts, got, tc.want)
			continue
		}
		for i := range got {
			if !strings.HasPrefix(got[i], tc.want[i]) {
				t.Errorf("%+v: got %q, want it to start %q", opts, got[i], tc.want[i])
			}
		}
	}
}
