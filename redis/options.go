package redis

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	goredis "github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// Bounds of Options.NodeTimeout: the default when left zero, and the least
// allowed (a tick is a quarter of it).
const (
	DefaultNodeTimeout = 3 * time.Second
	MinNodeTimeout     = 300 * time.Millisecond
)

// DefaultWarnEvery is how often a node that cannot use Redis says so again
// in its log while the trouble lasts: often enough to be seen, rarely
// enough that a long outage does not flood the log (retries are far more
// frequent).
const DefaultWarnEvery = 30 * time.Second

// Options configures a Backend. New checks them; the zero value of each
// field but URL is a working default.
type Options struct {
	// URL is the Redis URL, as in redis://user:pass@host:6379/0.
	URL string
	// NodeID names this node in Redis and in per-node shares. It must be
	// unique among running nodes; the default is the host name and a random
	// suffix, new at every start.
	NodeID string
	// NodeTimeout is how long the shares of a node that stopped without a
	// word (killed, power lost) still count: DefaultNodeTimeout if zero, at
	// least MinNodeTimeout.
	NodeTimeout time.Duration
	// Logger gets warnings about Redis; nil discards them.
	Logger *slog.Logger
	// WarnEvery is how often trouble with Redis is logged again while it
	// lasts; the default is DefaultWarnEvery.
	WarnEvery time.Duration
	// Metrics, if not nil, gets the backend's metrics (presence_redis_*),
	// registered by New.
	Metrics prometheus.Registerer
}

// settings are a Backend's options once checked, fixed at New.
type settings struct {
	id        string
	inc       string        // new at every start: a restart under the same id is a new node
	ttl       time.Duration // the node timeout
	tick      time.Duration // a quarter of it
	log       *slog.Logger
	url       string // without its password, for logs and errors
	warnEvery time.Duration
}

// check fills in the defaults and returns the settings, or what is wrong
// with the options. It is the only place that checks them.
func (o Options) check() (settings, *goredis.Options, error) {
	ro, err := parseURL(o.URL)
	if err != nil {
		return settings{}, nil, err
	}
	if o.NodeTimeout == 0 {
		o.NodeTimeout = DefaultNodeTimeout
	}
	if o.NodeTimeout < MinNodeTimeout {
		return settings{}, nil, fmt.Errorf("node timeout %v: must be at least %v", o.NodeTimeout, MinNodeTimeout)
	}
	if o.WarnEvery <= 0 {
		o.WarnEvery = DefaultWarnEvery
	}
	if o.NodeID == "" {
		host, _ := os.Hostname()
		o.NodeID = host + "-" + randomHex(4)
	}
	if strings.ContainsAny(o.NodeID, " =") || len(o.NodeID) > 128 {
		return settings{}, nil, fmt.Errorf("node id %q: use 1 to 128 characters without spaces or '='", o.NodeID)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	ro.DialTimeout, ro.ReadTimeout, ro.WriteTimeout = opTimeout, opTimeout, opTimeout
	ro.MaxRetries = 1
	ro.PoolSize = 4
	ro.DisableIdentity = true // no CLIENT SETINFO on every connect
	ro.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	return settings{
		id: o.NodeID,
		// Incarnations of one node id are ordered by the time they started
		// (on that node's own clock: only the same host's restarts are
		// compared), with a random tail in case two start at once.
		inc:       fmt.Sprintf("%016x%s", time.Now().UnixNano(), randomHex(2)),
		ttl:       o.NodeTimeout,
		tick:      o.NodeTimeout / ticksPerTimeout,
		log:       o.Logger,
		url:       redactURL(o.URL),
		warnEvery: o.WarnEvery,
	}, ro, nil
}

// randomHex is n random bytes in hex.
func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
