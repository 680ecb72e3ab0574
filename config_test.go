package main

import (
	"bytes"
	"context"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/presence/presence/handlers"
	"github.com/presence/presence/presence"
)

func TestConfigDefaultsAndOverrides(t *testing.T) {
	t.Parallel()
	c, err := parseConfig(nil, func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != ":8080" || c.Heartbeat != 15*time.Second || c.Window != 100*time.Millisecond || c.WriteTimeout != 4*time.Second || c.MaxStreams < 1 {
		t.Fatalf("defaults: %+v", c)
	}
	env := map[string]string{"PRESENCE_HEARTBEAT": "5s", "PRESENCE_ADDR": ":1", "PRESENCE_LOG_FORMAT": "json"}
	c, err = parseConfig([]string{"--addr", ":2"}, func(k string) string { return env[k] }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.Heartbeat != 5*time.Second || c.Addr != ":2" || c.LogFormat != "json" {
		t.Fatalf("env and flags: %+v", c)
	}
	if c.MaxStreamsPerIP != 0 || len(c.routerOptions(nil, nil).Stream.TrustedProxies) != 0 {
		t.Fatalf("per-address bound and trusted proxies must be off by default: %+v", c)
	}
	c, err = parseConfig([]string{"--max-streams-per-ip", "20", "--trusted-proxies", " 10.0.0.0/8,fd00::/8 ,192.0.2.1"}, func(string) string { return "" }, io.Discard)
	if err != nil || c.MaxStreamsPerIP != 20 || !slices.Equal(c.routerOptions(nil, nil).Stream.TrustedProxies, []string{"10.0.0.0/8", "fd00::/8", "192.0.2.1"}) {
		t.Fatalf("--max-streams-per-ip and --trusted-proxies: %v %+v", err, c)
	}
	// The flags' defaults are the packages' own, and map to their options.
	c, err = parseConfig([]string{"--allowed-origins", "https://a.example/, *", "--private-rooms", "staff-*,ops"}, func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	hub, want := c.hubOptions(), presence.DefaultHubOptions()
	want.MaxStreams, want.Grace, want.MaxGracePerSource = c.MaxStreams, 3*time.Second, 16
	if hub != want {
		t.Errorf("hub options: %+v, want %+v", hub, want)
	}
	router, wantRouter := c.routerOptions(nil, nil), handlers.DefaultOptions()
	if router.Stream.Retry != wantRouter.Stream.Retry || router.Stream.WriteTimeout != wantRouter.Stream.WriteTimeout ||
		router.RoomsLimit != wantRouter.RoomsLimit || router.Stream.MaxWatch != wantRouter.Stream.MaxWatch || router.MaxHeaderBytes != wantRouter.MaxHeaderBytes ||
		!slices.Equal(router.CORS.AllowedOrigins, []string{"https://a.example", "*"}) || !slices.Equal(router.Stream.Identity.Private, []string{"staff-*", "ops"}) {
		t.Errorf("router options: %+v, want the defaults %+v with the origins and private rooms given", router, wantRouter)
	}
	if defaultMaxStreams(20000) != 19000 || defaultMaxStreams(1024) != 924 {
		t.Fatalf("defaultMaxStreams: %d %d", defaultMaxStreams(20000), defaultMaxStreams(1024))
	}
}

func TestBadSettingsStopTheStartAndNameTheSetting(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"--heartbeat", "0s"}, nil, "--heartbeat (PRESENCE_HEARTBEAT) must be positive"},
		{nil, map[string]string{"PRESENCE_WINDOW": "soon"}, `PRESENCE_WINDOW="soon"`},
		{[]string{"--log-format", "xml"}, nil, "--log-format"},
		{[]string{"--max-rooms", "0"}, nil, "--max-rooms"},
		{[]string{"--rooms-limit", "5000"}, nil, "--rooms-limit"},
		{[]string{"--engine", "direct"}, nil, "flag provided but not defined: -engine"},
		// Checked by the hub, the broadcaster and Redis, named here.
		{[]string{"--grace", "-1s"}, nil, "--grace (PRESENCE_GRACE) must not be negative, got -1s"},
		{[]string{"--window", "-1s", "--max-streams", "-3"}, nil, "--window (PRESENCE_WINDOW) must be positive, got -1s\n--max-streams (PRESENCE_MAX_STREAMS) must be at least 1, got -3"},
		{[]string{"--window", "0s"}, nil, "--window (PRESENCE_WINDOW) must be positive, got 0s"},
		{[]string{"--max-rooms", "0"}, nil, "--max-rooms (PRESENCE_MAX_ROOMS) must be at least 1, got 0"},
		{nil, map[string]string{"PRESENCE_MEMBERS_CAP": "0"}, "--members-cap (PRESENCE_MEMBERS_CAP) must be at least 1, got 0"},
		{[]string{"--heartbeat", "-1s"}, nil, "--heartbeat (PRESENCE_HEARTBEAT) must be positive, got -1s"},
		{[]string{"--max-grace-per-ip", "-1"}, nil, "--max-grace-per-ip (PRESENCE_MAX_GRACE_PER_IP) must not be negative"},
		{[]string{"--redis-url", "redis://127.0.0.1:1", "--node-timeout", "100ms"}, nil, "300ms"},
		{[]string{"--log-level", "loud"}, nil, "log-level"},
		{[]string{"extra"}, nil, "unexpected arguments"},
		{[]string{"--nope"}, nil, "flag provided but not defined: -nope"},
		{[]string{"--max-streams-per-ip", "-1"}, nil, "--max-streams-per-ip (PRESENCE_MAX_STREAMS_PER_IP) must not be negative"},
		{[]string{"--max-watch-rooms-per-ip", "-1"}, nil, "--max-watch-rooms-per-ip (PRESENCE_MAX_WATCH_ROOMS_PER_IP) must not be negative"},
		{[]string{"--trusted-proxies", "10.0.0.0/8, 10.0.0.0/40"}, nil, `--trusted-proxies (PRESENCE_TRUSTED_PROXIES): "10.0.0.0/40" is not a CIDR`},
		{nil, map[string]string{"PRESENCE_TRUSTED_PROXIES": "proxy.internal"}, `--trusted-proxies (PRESENCE_TRUSTED_PROXIES): "proxy.internal" is not a CIDR`},
		// Checked by the router, named here.
		{[]string{"--rooms-limit", "0"}, nil, "--rooms-limit (PRESENCE_ROOMS_LIMIT) must be from 1 to 1000, got 0"},
		{nil, map[string]string{"PRESENCE_MAX_WATCH": "0"}, "--max-watch (PRESENCE_MAX_WATCH) must be at least 1, got 0"},
		{[]string{"--max-header-bytes", "1023"}, nil, "--max-header-bytes (PRESENCE_MAX_HEADER_BYTES) must be at least 1024, got 1023"},
		{[]string{"--retry", "0s"}, nil, "--retry (PRESENCE_RETRY) must be positive, got 0s"},
		{nil, map[string]string{"PRESENCE_API_KEY": "short"}, "--api-key (PRESENCE_API_KEY) must be at least 16 bytes, got 5"},
		{nil, map[string]string{"PRESENCE_WRITE_TIMEOUT": "-1s"}, "--write-timeout (PRESENCE_WRITE_TIMEOUT) must be positive, got -1s"},
		{[]string{"--allowed-origins", "https://docs.example.com/, docs.example.com"}, nil, `--allowed-origins (PRESENCE_ALLOWED_ORIGINS): "docs.example.com" is not an origin such as https://example.com`},
		{[]string{"--private-rooms", "staff-*,team-["}, nil, `--private-rooms (PRESENCE_PRIVATE_ROOMS): "team-[" is not a room pattern: syntax error in pattern`},
		// Checked by the webhooks, named here.
		{[]string{"--webhook-url", "ftp://hooks.example"}, nil, `--webhook-url (PRESENCE_WEBHOOK_URL): "ftp://hooks.example" is not an http or https URL`},
		{[]string{"--webhook-url", "https://hooks.example/in", "--webhook-rooms", "help-*,[!x]"}, nil, `--webhook-rooms (PRESENCE_WEBHOOK_ROOMS): "[!x]" is not a room pattern`},
		{[]string{"--webhook-url", "https://hooks.example/in", "--webhook-queue", "-1"}, nil, "--webhook-queue (PRESENCE_WEBHOOK_QUEUE) must not be negative, got -1"},
		// Still the process's own.
		{[]string{"--drain", "0s"}, nil, "--drain (PRESENCE_DRAIN) must be positive, got 0s"},
		{[]string{"--tls-cert", "cert.pem"}, nil, "--tls-cert (PRESENCE_TLS_CERT) and --tls-key (PRESENCE_TLS_KEY) go together"},
		{[]string{"--send-buffer", "-1"}, nil, "--send-buffer (PRESENCE_SEND_BUFFER) must not be negative, got -1"},
	} {
		var stderr bytes.Buffer
		// Cancelled, so that a setting wrongly accepted ends run at once.
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		args := append([]string{"--addr", "127.0.0.1:0"}, tc.args...)
		err := run(ctx, args, func(k string) string { return tc.env[k] }, io.Discard, &stderr)
		if err == nil || !strings.Contains(err.Error()+stderr.String(), tc.want) {
			t.Errorf("%v %v: got %v, want an error with %q", tc.args, tc.env, err, tc.want)
		}
	}
}

func TestHelpListsEverySettingWithItsVariable(t *testing.T) {
	t.Parallel()
	var stderr bytes.Buffer
	if err := run(context.Background(), []string{"--help"}, func(string) string { return "" }, io.Discard, &stderr); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"--addr", "PRESENCE_ADDR", "--heartbeat", "PRESENCE_HEARTBEAT", "--max-streams", "PRESENCE_WRITE_TIMEOUT"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("--help lacks %s", want)
		}
	}
}
