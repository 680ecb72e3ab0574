package main

import (
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"syscall"
	"time"

	"github.com/presence/presence/auth"
	"github.com/presence/presence/handlers"
	"github.com/presence/presence/internal/option"
	"github.com/presence/presence/presence"
	"github.com/presence/presence/redis"
	"github.com/presence/presence/webhook"
)

// config is every setting of the service. Each is a flag and an environment
// variable PRESENCE_<FLAG NAME>, e.g. --write-timeout and
// PRESENCE_WRITE_TIMEOUT; a flag wins over the variable.
type config struct {
	Addr               string
	Heartbeat          time.Duration
	Window             time.Duration
	WriteTimeout       time.Duration
	Retry              time.Duration
	MaxStreams         int
	MaxRooms           int
	RoomsLimit         int
	MaxWatch           int
	Drain              time.Duration
	TCPUserTimeout     time.Duration
	SendBuffer         int
	ReadHeaderTimeout  time.Duration
	IdleTimeout        time.Duration
	MaxHeaderBytes     int
	LogFormat          string
	LogLevel           slog.Level
	RedisURL           string
	NodeID             string
	NodeTimeout        time.Duration
	TokenSecret        string
	TokenPublicKey     string
	PrivateRooms       string
	Grace              time.Duration
	MembersCap         int
	AllowedOrigins     string
	TLSCert            string
	TLSKey             string
	MaxStreamsPerIP    int
	MaxGracePerIP      int
	MaxWatchRoomsPerIP int
	TrustedProxies     string
	WebhookURL         string
	WebhookSecret      string
	WebhookRooms       string
	WebhookQueue       int
	APIKey             string

	tlsCert tls.Certificate // loaded by check from TLSCert and TLSKey
}

// envName is the environment variable of a flag.
func envName(flagName string) string {
	return "PRESENCE_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// parseConfig reads settings from getenv and args, checks them, and fills
// in the defaults that depend on the machine. Errors name the setting.
func parseConfig(args []string, getenv func(string) string, stderr io.Writer) (config, error) {
	var c config
	hub, router := presence.DefaultHubOptions(), handlers.DefaultOptions()
	fs := flag.NewFlagSet("presence", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.Addr, "addr", ":8080", "address to listen on")
	fs.DurationVar(&c.Heartbeat, "heartbeat", 15*time.Second, "interval of the comment line sent on every stream to keep it alive and detect dead peers")
	fs.DurationVar(&c.Window, "window", hub.Window, "coalescing window: a room sends at most one count per window (a busy room with slow fan-outs waits up to 10 windows)")
	fs.DurationVar(&c.WriteTimeout, "write-timeout", router.Stream.WriteTimeout, "a stream whose write stalls this long is cut off")
	fs.DurationVar(&c.Retry, "retry", router.Stream.Retry, "reconnect delay sent to clients in the retry: field")
	fs.IntVar(&c.MaxStreams, "max-streams", 0, "most open streams; 0 means the open-file limit less 5% (at least 100 less)")
	fs.IntVar(&c.MaxRooms, "max-rooms", hub.MaxRooms, "most rooms with open streams; as many more that only watchers follow may be held apart")
	fs.IntVar(&c.MaxWatch, "max-watch", router.Stream.MaxWatch, "most rooms one stream may watch (GET /watch?rooms=, ?watch=); more get 400")
	fs.IntVar(&c.RoomsLimit, "rooms-limit", router.RoomsLimit, "rooms listed by GET /api/rooms when no limit is given")
	fs.DurationVar(&c.Drain, "drain", 10*time.Second, "on SIGINT or SIGTERM, the longest wait for streams and requests to end")
	fs.DurationVar(&c.TCPUserTimeout, "tcp-user-timeout", 10*time.Second, "TCP_USER_TIMEOUT: a peer that acknowledges nothing this long is dropped (0: kernel default)")
	fs.IntVar(&c.SendBuffer, "send-buffer", 8192, "SO_SNDBUF requested per connection, in bytes (the kernel doubles it; 0: kernel default)")
	fs.DurationVar(&c.ReadHeaderTimeout, "read-header-timeout", 5*time.Second, "time allowed to read request headers")
	fs.DurationVar(&c.IdleTimeout, "idle-timeout", 60*time.Second, "keep-alive connections idle this long are closed")
	fs.IntVar(&c.MaxHeaderBytes, "max-header-bytes", router.MaxHeaderBytes, "largest request line and headers accepted, in bytes, as HTTP/1.1 carries them; one byte more gets 431")
	fs.StringVar(&c.RedisURL, "redis-url", "", "share counts with other nodes through this Redis (redis://[user:pass@]host:port/db); empty: this node alone, in memory")
	fs.StringVar(&c.NodeID, "node-id", "", "this node's name in Redis and in per-node shares; empty: host name and a random suffix, new at each start")
	fs.DurationVar(&c.NodeTimeout, "node-timeout", redis.DefaultNodeTimeout, "with --redis-url: how long the streams of a node that died without a word still count (others notice within 5/4 of it)")
	fs.StringVar(&c.TokenSecret, "token-secret", "", "HS256 secret of signed-in users' tokens, at least 32 bytes (better set by the environment than on the command line)")
	fs.StringVar(&c.TokenPublicKey, "token-public-key", "", "PEM file with the RSA (RS256) or Ed25519 (EdDSA) public key of signed-in users' tokens")
	fs.StringVar(&c.APIKey, "api-key", "", "key of the server API (members, disconnects, every room), sent by a site's backends as Authorization: Bearer; at least 16 bytes, better set by the environment; empty: the server API answers 401")
	fs.StringVar(&c.PrivateRooms, "private-rooms", "", "comma-separated room-name patterns (* ? [...]) whose streams need a valid token")
	fs.DurationVar(&c.Grace, "grace", 3*time.Second, "a person whose stream closed after being open at least this long still counts this long, so that a refresh changes nothing; a stream closed sooner leaves at once (0: off)")
	fs.IntVar(&c.MembersCap, "members-cap", hub.MembersCap, "most members listed in a presence event")
	fs.StringVar(&c.AllowedOrigins, "allowed-origins", "", "comma-separated origins (https://docs.example.com) whose pages may use the streams and the API, as the widget does; * for any; others get 403")
	fs.StringVar(&c.TLSCert, "tls-cert", "", "PEM certificate (chain) file: serve HTTPS, and HTTP/2, which carries many streams over one connection")
	fs.StringVar(&c.TLSKey, "tls-key", "", "PEM private key file of --tls-cert")
	fs.IntVar(&c.MaxGracePerIP, "max-grace-per-ip", 16, "most closed streams of one client address (IPv6: one /64) kept counted in their grace at once; a stream closing past it leaves at once, so that rotating made-up people cannot add more than this to what an address holds open (0: no bound; behind a proxy, set --trusted-proxies)")
	fs.IntVar(&c.MaxStreamsPerIP, "max-streams-per-ip", 0, "most streams of one client address (IPv6: one /64), open plus closed in their grace; more get 429 (0: no bound, the default: offices and mobile carriers put many people behind one address)")
	fs.IntVar(&c.MaxWatchRoomsPerIP, "max-watch-rooms-per-ip", hub.MaxWatchRoomsPerSource, "most rooms nobody was in that the watches of one client address (IPv6: one /64) may bring into existence, held until their last watcher goes; a watch past it gets 429, so that made-up names from one address cannot fill the rooms only watchers hold (0: no bound)")
	fs.StringVar(&c.TrustedProxies, "trusted-proxies", "", "comma-separated CIDRs (10.0.0.0/8) of reverse proxies whose X-Forwarded-For, or else Forwarded, names the client; from any other peer, the peer's address counts")
	fs.StringVar(&c.WebhookURL, "webhook-url", "", "POST signed webhooks of rooms occupied and vacated and members joined and left to this http or https URL; empty: none")
	fs.StringVar(&c.WebhookSecret, "webhook-secret", "", "secret of the webhooks' X-Presence-Signature (HMAC-SHA256 of the body; better set by the environment than on the command line)")
	fs.StringVar(&c.WebhookRooms, "webhook-rooms", "", "comma-separated room-name patterns (* ? [...], as --private-rooms) whose webhooks are sent; empty: every room")
	fs.IntVar(&c.WebhookQueue, "webhook-queue", webhook.DefaultQueue, "most webhook events waiting for delivery; past it the oldest are dropped, counted and logged")
	fs.StringVar(&c.LogFormat, "log-format", "text", "log format: text or json")
	fs.TextVar(&c.LogLevel, "log-level", slog.LevelInfo, "log level: debug, info, warn or error")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: presence [flags]\n\nEvery flag can also be set by an environment variable; the flag wins.\n\n")
		fs.VisitAll(func(f *flag.Flag) {
			fmt.Fprintf(stderr, "  --%s (%s, default %q)\n    \t%s\n", f.Name, envName(f.Name), f.DefValue, f.Usage)
		})
	}

	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		if v := getenv(envName(f.Name)); v != "" && envErr == nil {
			if err := fs.Set(f.Name, v); err != nil {
				envErr = fmt.Errorf("%s=%q: %v", envName(f.Name), v, err)
			}
		}
	})
	if envErr != nil {
		return c, envErr
	}
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments %q (settings are flags, see --help)", fs.Args())
	}
	return c, c.check()
}

// check rejects the process's own settings that cannot work (the server's
// timeouts, TLS files, sockets, logs) and fills in machine defaults.
// Settings that go to the hub, the broadcaster, the router or Redis are
// checked by them (see optionFlag).
func (c *config) check() error {
	var errs []error
	positive := func(name string, d time.Duration) {
		if d <= 0 {
			errs = append(errs, fmt.Errorf("--%s (%s) must be positive, got %s", name, envName(name), d))
		}
	}
	nonNegative := func(name string, n int) {
		if n < 0 {
			errs = append(errs, fmt.Errorf("--%s (%s) must not be negative, got %d", name, envName(name), n))
		}
	}
	positive("drain", c.Drain)
	positive("read-header-timeout", c.ReadHeaderTimeout)
	positive("idle-timeout", c.IdleTimeout)
	if (c.TLSCert == "") != (c.TLSKey == "") {
		errs = append(errs, fmt.Errorf("--tls-cert (%s) and --tls-key (%s) go together", envName("tls-cert"), envName("tls-key")))
	} else if c.TLSCert != "" {
		var err error
		if c.tlsCert, err = tls.LoadX509KeyPair(c.TLSCert, c.TLSKey); err != nil {
			errs = append(errs, fmt.Errorf("--tls-cert (%s) / --tls-key (%s): %v", envName("tls-cert"), envName("tls-key"), err))
		}
	}
	nonNegative("send-buffer", c.SendBuffer)
	if c.TCPUserTimeout < 0 {
		errs = append(errs, fmt.Errorf("--tcp-user-timeout (%s) must not be negative, got %s", envName("tcp-user-timeout"), c.TCPUserTimeout))
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		errs = append(errs, fmt.Errorf("--log-format (%s) must be text or json, got %q", envName("log-format"), c.LogFormat))
	}
	if c.MaxStreams == 0 {
		var lim syscall.Rlimit
		if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			errs = append(errs, fmt.Errorf("--max-streams: reading the open-file limit: %w", err))
		} else {
			c.MaxStreams = defaultMaxStreams(int(min(lim.Cur, 1<<30)))
		}
	}
	return errors.Join(errs...)
}

// hubOptions are the hub's settings.
func (c *config) hubOptions() presence.HubOptions {
	return presence.HubOptions{
		Window:                 c.Window,
		MaxStreams:             c.MaxStreams,
		MaxRooms:               c.MaxRooms,
		Grace:                  c.Grace,
		MembersCap:             c.MembersCap,
		MaxPerSource:           c.MaxStreamsPerIP,
		MaxGracePerSource:      c.MaxGracePerIP,
		MaxWatchRoomsPerSource: c.MaxWatchRoomsPerIP,
	}
}

// routerOptions are the router's settings, with the token verifier and the
// backend's readiness that main built.
func (c *config) routerOptions(tokens *auth.Verifier, ready func() error) handlers.Options {
	return handlers.Options{
		Stream: handlers.StreamOptions{
			Retry:          c.Retry,
			WriteTimeout:   c.WriteTimeout,
			MaxWatch:       c.MaxWatch,
			Identity:       handlers.IdentityOptions{Tokens: tokens, Private: splitList(c.PrivateRooms, nil)},
			TrustedProxies: splitList(c.TrustedProxies, nil),
		},
		RoomsLimit:     c.RoomsLimit,
		Ready:          ready,
		CORS:           handlers.CORSOptions{AllowedOrigins: splitList(c.AllowedOrigins, func(o string) string { return strings.TrimSuffix(o, "/") })},
		MaxHeaderBytes: c.MaxHeaderBytes,
		APIKey:         c.APIKey,
	}
}

// splitList splits a comma-separated setting into its non-empty items,
// trimmed of spaces and then by clean if given.
func splitList(s string, clean func(string) string) []string {
	var out []string
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if clean != nil {
			item = clean(item)
		}
		if item != "" {
			out = append(out, item)
		}
	}
	return out
}

// defaultMaxStreams leaves 5% of the open-file limit, at least 100 files,
// for the listener, logs and outgoing connections.
func defaultMaxStreams(nofile int) int {
	return max(1, nofile-max(100, nofile/20))
}

// optionFlag names the flag of an option that presence.NewHub,
// handlers.NewBroadcaster or handlers.NewRouter checks itself; "" for
// others.
func optionFlag(option string) string {
	switch option {
	case "Window":
		return "window"
	case "MaxStreams":
		return "max-streams"
	case "MaxRooms":
		return "max-rooms"
	case "Grace":
		return "grace"
	case "MaxGracePerSource":
		return "max-grace-per-ip"
	case "MaxPerSource":
		return "max-streams-per-ip"
	case "MaxWatchRoomsPerSource":
		return "max-watch-rooms-per-ip"
	case "MembersCap":
		return "members-cap"
	case "heartbeat":
		return "heartbeat"
	case "URL":
		return "webhook-url"
	case "Rooms":
		return "webhook-rooms"
	case "Queue":
		return "webhook-queue"
	case "Stream.Retry":
		return "retry"
	case "Stream.WriteTimeout":
		return "write-timeout"
	case "Stream.Identity.Private":
		return "private-rooms"
	case "Stream.TrustedProxies":
		return "trusted-proxies"
	case "Stream.MaxWatch":
		return "max-watch"
	case "RoomsLimit":
		return "rooms-limit"
	case "CORS.AllowedOrigins":
		return "allowed-origins"
	case "MaxHeaderBytes":
		return "max-header-bytes"
	case "APIKey":
		return "api-key"
	}
	return ""
}

// flagErrors rewrites the *option.Errors in err to name their flag and
// variable, as config's own errors do.
func flagErrors(err error) error {
	var errs []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	} else {
		errs = []error{err}
	}
	for i, e := range errs {
		var oe *option.Error
		if errors.As(e, &oe) && optionFlag(oe.Option) != "" {
			name := optionFlag(oe.Option)
			errs[i] = errors.New(oe.Named(fmt.Sprintf("--%s (%s)", name, envName(name))))
		}
	}
	return errors.Join(errs...)
}
