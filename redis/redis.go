// Package redis is the multi-node presence.Backend: nodes share their counts
// through Redis, so that every client of a room, on whatever node, sees the
// room's global count.
//
// Each node owns one Redis hash holding its share of every room (how many of
// its streams are in it) with a relative TTL that the node renews every
// tick; a node that dies stops renewing it and its shares expire, with no
// action by anyone and no need for synchronised clocks. Changes are sent in
// batches: one script call writes the changed shares and publishes them on
// one channel that every node subscribes to, so Redis traffic grows with
// changes and rooms, never with streams. Every node keeps all shares in
// memory, so counting, listing rooms and the API never wait on Redis, and a
// node whose Redis is away keeps serving what it knows: its own share is
// always exact, the others' as last heard.
package redis

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/presence/presence/presence"
)

// Bounds of Options.NodeTimeout: the default when left zero, and the least
// allowed (a tick is a quarter of it).
const (
	DefaultNodeTimeout = 3 * time.Second
	MinNodeTimeout     = 300 * time.Millisecond
)

// Keys and the channel, shared by every node of a cluster.
const (
	nodePrefix = "presence:node:" // + node id: the node's hash of shares
	nodesKey   = "presence:nodes" // sorted set: node ids by the time they count until
	channel    = "presence:changes"
)

// nodeKey is the name of node id's hash.
func nodeKey(id string) string { return nodePrefix + id }

// Pacing. A node marks itself alive and checks the others every
// NodeTimeout/4 (so a dead node's shares are gone within about 5/4
// NodeTimeout), renews the TTL of its hash (hashTTLFactor NodeTimeouts)
// every hashEvery ticks, and pings its subscription when it has been silent
// for pingEvery. It writes its changes at most once per flush gap: 1 ms per
// node of the cluster, from minFlushGap to maxFlushGap, so that the whole
// cluster publishes at most about 1,000 batches a second (each delivered to
// every node) however many nodes there are.
const (
	ticksPerTimeout = 4
	hashEvery       = 4
	hashTTLFactor   = 3
	minFlushGap     = 10 * time.Millisecond
	maxFlushGap     = 100 * time.Millisecond
	flushGapPerNode = time.Millisecond
	pingEvery       = 5 * time.Second
	opTimeout       = time.Second     // one Redis call
	snapshotTimeout = 5 * time.Second // reading every node's shares
	maxBackoff      = time.Second     // between retries of a broken subscription
)

// Fields of a node's hash besides its rooms: its version and incarnation.
// ':' is not allowed in room names, so they cannot clash with a room.
const (
	verField = ":v"
	incField = ":i"
)

// Options configures a Backend.
type Options struct {
	// URL is the Redis URL, as in redis://user:pass@host:6379/0.
	URL string
	// NodeID names this node in Redis and in per-node shares. It must be
	// unique among running nodes; the default is the host name and a random
	// suffix, new at every start.
	NodeID string
	// NodeTimeout is how long the shares of a node that stopped without a
	// word (killed, power lost) still count.
	NodeTimeout time.Duration
	// Logger gets warnings about Redis; nil discards them.
	Logger *slog.Logger
	// WarnEvery is how often trouble with Redis is logged again while it
	// lasts; the default is DefaultWarnEvery.
	WarnEvery time.Duration
}

// Backend implements presence.Backend and presence.Shared over Redis.
type Backend struct {
	rdb       *goredis.Client
	id        string
	inc       string // new at every start: a restart under the same id is a new node
	ttl       time.Duration
	tick      time.Duration
	log       *slog.Logger
	url       string // without its password, for logs and errors
	warnEvery time.Duration

	wake   chan struct{} // cap 1: local shares changed, flush them
	resync chan struct{} // cap 1: the view of the others may have gaps

	commands atomic.Uint64 // Redis commands sent
	errs     atomic.Uint64 // Redis calls that failed
	resyncs  atomic.Uint64 // full reads of the other nodes' shares

	mu       sync.Mutex
	local    presence.Tallies   // this node's streams by room
	all      presence.Tallies   // every node's, this one's included
	dirty    map[entry]struct{} // local entries changed since the last flush
	full     bool               // the next flush rewrites the whole hash
	ver      uint64             // of this node's last flush
	nodes    map[string]*node
	dropped  map[string]time.Time // nodes forgotten lately, and when: a snapshot read before must not bring them back
	err      error                // why the view is not current; nil if it is
	reason   error                // err in a few words for the public
	current  bool                 // the view has been current once: the node is ready
	warned   time.Time            // when trouble was last logged; zero: not since it began
	warnedOf error                // the reason then
	since    time.Time            // when the trouble began
	subbed   bool                 // the subscription is up and confirmed
	onChange func(room string)
}

// node is what this node knows of another one.
type node struct {
	inc     string
	ver     uint64
	entries map[entry]share
	seen    time.Time // when it was last heard of (monotonic)
}

// New connects to nothing yet: it checks the options and returns a Backend
// that Run brings to life.
func New(opts Options) (*Backend, error) {
	ro, err := parseURL(opts.URL)
	if err != nil {
		return nil, err
	}
	ro.DialTimeout, ro.ReadTimeout, ro.WriteTimeout = opTimeout, opTimeout, opTimeout
	ro.MaxRetries = 1
	ro.PoolSize = 4
	ro.DisableIdentity = true // no CLIENT SETINFO on every connect
	ro.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	if opts.NodeTimeout == 0 {
		opts.NodeTimeout = DefaultNodeTimeout
	}
	if opts.WarnEvery <= 0 {
		opts.WarnEvery = DefaultWarnEvery
	}
	if opts.NodeTimeout < MinNodeTimeout {
		return nil, fmt.Errorf("node timeout must be at least %v", MinNodeTimeout)
	}
	if opts.NodeID == "" {
		host, _ := os.Hostname()
		var b [4]byte
		rand.Read(b[:])
		opts.NodeID = host + "-" + hex.EncodeToString(b[:])
	}
	if strings.ContainsAny(opts.NodeID, " =") || len(opts.NodeID) > 128 {
		return nil, fmt.Errorf("node id %q: use 1 to 128 characters without spaces or '='", opts.NodeID)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	// Incarnations of one node id are ordered by the time they started
	// (on that node's own clock: only the same host's restarts are
	// compared), with a random tail in case two start at once.
	var tail [2]byte
	rand.Read(tail[:])
	inc := fmt.Sprintf("%016x%s", time.Now().UnixNano(), hex.EncodeToString(tail[:]))
	return &Backend{
		rdb:       goredis.NewClient(ro),
		id:        opts.NodeID,
		inc:       inc,
		ttl:       opts.NodeTimeout,
		tick:      opts.NodeTimeout / ticksPerTimeout,
		log:       log,
		url:       redactURL(opts.URL),
		warnEvery: opts.WarnEvery,
		wake:      make(chan struct{}, 1),
		resync:    make(chan struct{}, 1),
		local:     make(presence.Tallies),
		all:       make(presence.Tallies),
		dirty:     make(map[entry]struct{}),
		full:      true,
		nodes:     make(map[string]*node),
		dropped:   make(map[string]time.Time),
		err:       errors.New("not connected to redis yet"),
		reason:    errNotRead,
		since:     time.Now(),
	}, nil
}

// URL returns the Redis URL without its password.
func (b *Backend) URL() string { return b.url }

// Ready is nil once this node has read every node's shares and listens to
// their changes: before, it knows only its own streams, and a load balancer
// should send clients to nodes that know the whole cluster. Otherwise it
// says why in a few words fit for the public (the details go to the log).
// Once ready, a node stays ready through later outages, serving the last
// known counts (see Health).
func (b *Backend) Ready() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.current {
		return nil
	}
	return b.reason
}

// NodeID returns this node's id.
func (b *Backend) NodeID() string { return b.id }

// Stats counts this node's Redis commands and failed calls, for metrics.
type Stats struct {
	Commands uint64 // calls to Redis
	Errors   uint64 // calls that failed
	Resyncs  uint64 // full reads of every node's shares, after a gap or trouble
}

// Stats returns the counters so far.
func (b *Backend) Stats() Stats {
	return Stats{Commands: b.commands.Load(), Errors: b.errs.Load(), Resyncs: b.resyncs.Load()}
}

// Health implements presence.Shared. Its error is in a few words fit for
// the public ("redis unreachable"), since /readyz shows it; the details
// (addresses, Redis's own words) go to the log.
func (b *Backend) Health() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.err == nil {
		return nil
	}
	return b.reason
}

// askResync asks the resync loop for one more full read, unless one is
// asked for and not started yet: it would read the same.
func (b *Backend) askResync() { b.poke(b.resync) }

// poke wakes the loop behind ch without blocking.
func (b *Backend) poke(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// setErr records a failed Redis call; the next successful tick rewrites
// this node's hash and re-reads the others, since anything may have
// happened meanwhile.
//
// It logs the trouble when it begins and again every warnEvery while it
// lasts, not on every retry. A refusal (credentials, rights, database)
// that comes while running, say after an ACL change, is logged as an
// error but does not stop the node: it keeps serving its own streams and
// the last known counts, and heals by itself once Redis takes it again,
// whereas stopping would turn a change in Redis into an outage of every
// node at once.
func (b *Backend) setErr(op string, err error) {
	b.errs.Add(1)
	now := time.Now()
	b.mu.Lock()
	if b.err == nil {
		b.since = now
	}
	b.err = fmt.Errorf("redis %s: %w", op, err)
	b.reason = errUnreachable
	if refused(err) {
		b.reason = errRefused
	}
	b.full = true
	// A refusal is news even right after a dropped connection was logged;
	// at most one of each per warnEvery, however the calls alternate.
	say := b.warned.IsZero() || now.Sub(b.warned) >= b.warnEvery ||
		b.reason == errRefused && b.warnedOf != errRefused
	if say {
		b.warned, b.warnedOf = now, b.reason
	}
	current, since, reason := b.current, b.since, b.reason
	b.mu.Unlock()
	if !say {
		return
	}
	args := []any{"redis", b.url, "op", op, "err", err, "for", now.Sub(since).Round(time.Second).String()}
	switch {
	case reason == errRefused:
		b.log.Error("redis refuses this node: check --redis-url and the user's rights in Redis; serving this node's streams and the last known counts meanwhile", args...)
	case current:
		b.log.Warn("redis unavailable: serving the last known counts", args...)
	default:
		b.log.Warn("redis unreachable: this node is not ready until it has read the cluster once", args...)
	}
}

// Run keeps this node's shares in Redis and its view of the other nodes
// current until ctx ends. onChange is called, with no lock held, for every
// room whose count moved because of another node. Run returns when its
// loops have stopped; then Close removes this node's shares.
func (b *Backend) Run(ctx context.Context, onChange func(room string)) {
	b.onChange = onChange // before the loops start; they only read it
	var wg sync.WaitGroup
	wg.Add(4)
	go func() { defer wg.Done(); b.flushLoop(ctx) }()
	go func() { defer wg.Done(); b.tickLoop(ctx) }()
	go func() { defer wg.Done(); b.resyncLoop(ctx) }()
	go func() { defer wg.Done(); b.subscribeLoop(ctx) }()
	wg.Wait()
}

// Close removes this node's shares at once, telling the other nodes, and
// closes the connections. Call it after Run has returned.
func (b *Backend) Close(ctx context.Context) error {
	b.mu.Lock()
	b.ver++
	msg, _ := json.Marshal(message{Node: b.id, Inc: b.inc, Ver: b.ver, Kind: "x"})
	b.mu.Unlock()
	b.commands.Add(1)
	err := goneScript.Run(ctx, b.rdb, []string{nodeKey(b.id), nodesKey}, b.id, channel, string(msg)).Err()
	if cerr := b.rdb.Close(); err == nil {
		err = cerr
	}
	return err
}

// flushLoop writes this node's changed shares, in batches.
func (b *Backend) flushLoop(ctx context.Context) {
	var last time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-b.wake:
		}
		if wait := time.Until(last.Add(b.flushGap())); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
		last = time.Now()
		b.flush(ctx)
	}
}

// flushGap is the least time between two flushes of this node.
func (b *Backend) flushGap() time.Duration {
	b.mu.Lock()
	nodes := len(b.nodes) + 1
	b.mu.Unlock()
	return min(max(time.Duration(nodes)*flushGapPerNode, minFlushGap), maxFlushGap)
}

// flush sends the changed shares (or all of them after trouble) in one
// script call that also publishes them to the other nodes.
func (b *Backend) flush(ctx context.Context) {
	b.mu.Lock()
	if len(b.dirty) == 0 && !b.full {
		b.mu.Unlock()
		return
	}
	full := b.full
	b.ver++
	msg := message{Node: b.id, Inc: b.inc, Ver: b.ver, Kind: "d"}
	var set, del []any
	add := func(e entry, s share) {
		f := e.field()
		if s.conns > 0 {
			v := e.value(s)
			set = append(set, f, v)
			msg.Entries = append(msg.Entries, f, v)
		} else {
			del = append(del, f)
			msg.Entries = append(msg.Entries, f, "0")
		}
	}
	if full {
		msg.Kind = "f"
		for room, t := range b.local {
			if n := t.Anonymous(); n > 0 {
				add(entry{room: room}, share{conns: n})
			}
			t.Each(func(id string, conns int, name string, signed bool) {
				add(entry{room, id}, share{conns, name, signed})
			})
		}
	} else {
		for e := range b.dirty {
			add(e, b.localShare(e))
		}
	}
	payload, _ := json.Marshal(msg)
	args := []any{(hashTTLFactor * b.ttl).Milliseconds(), b.ver, b.inc, boolArg(full), channel, string(payload), len(set) / 2}
	args = append(append(args, set...), del...)
	clear(b.dirty)
	b.full = false
	b.mu.Unlock()

	cctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	b.commands.Add(1)
	ok, err := flushScript.Run(cctx, b.rdb, []string{nodeKey(b.id)}, args...).Int()
	switch {
	case err != nil:
		if ctx.Err() == nil {
			b.setErr("flush", err)
		}
	case ok == 0: // our hash is gone (expired, FLUSHALL, restart): rewrite it
		b.mu.Lock()
		b.full = true
		b.mu.Unlock()
		b.poke(b.wake)
	}
}

func boolArg(v bool) int {
	if v {
		return 1
	}
	return 0
}

// tickLoop renews this node's hash, notices dead nodes and, after trouble,
// rewrites this node's hash and re-reads everyone's.
func (b *Backend) tickLoop(ctx context.Context) {
	t := time.NewTicker(b.tick)
	defer t.Stop()
	for n := 0; ; n++ {
		b.tickOnce(ctx, n%hashEvery == 0) // the first at once: connect, register, read the others
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// resyncLoop re-reads every node's shares when asked, after a short random
// pause so that nodes back from the same trouble do not all read at once,
// and apart from the ticks, which must go on renewing this node meanwhile.
func (b *Backend) resyncLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-b.resync:
		}
		t := time.NewTimer(mrand.N(b.tick/4 + time.Millisecond))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		select { // asked again during the pause: this read serves that too
		case <-b.resync:
		default:
		}
		if b.snapshot(ctx) {
			b.mu.Lock()
			healed := b.err != nil && b.subbed
			first := healed && !b.current
			if healed {
				b.err, b.reason, b.current, b.warned = nil, nil, true, time.Time{}
			}
			since := b.since
			b.mu.Unlock()
			switch {
			case first:
				b.log.Info("redis answered: counts are global and current; this node is ready", "redis", b.url, "after", time.Since(since).Round(time.Millisecond).String())
			case healed:
				b.log.Info("redis available again: counts are global and current", "redis", b.url, "after", time.Since(since).Round(time.Millisecond).String())
			}
		}
	}
}

func (b *Backend) tickOnce(ctx context.Context, renew bool) {
	start := time.Now()
	cctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	b.commands.Add(1)
	res, err := tickScript.Run(cctx, b.rdb, []string{nodesKey, nodeKey(b.id)},
		b.ttl.Milliseconds(), b.id, boolArg(renew), (hashTTLFactor * b.ttl).Milliseconds()).Slice()
	if err == nil && len(res) != 2 {
		err = fmt.Errorf("%d results, want 2", len(res))
	}
	if err != nil {
		if ctx.Err() == nil {
			b.setErr("tick", err)
		}
		return
	}
	mine, _ := res[0].(int64)
	live := make(map[string]bool)
	if ids, ok := res[1].([]any); ok {
		for _, v := range ids {
			if id, ok := v.(string); ok {
				live[id] = true
			}
		}
	}

	b.mu.Lock()
	recovered := b.err != nil
	if recovered || mine == 0 {
		b.full = true // our hash is missing or may be stale
	}
	full := b.full
	var changed []string
	unknown := false
	for id, nd := range b.nodes {
		if !live[id] && nd.seen.Before(start) {
			changed = b.dropLocked(id, changed)
		}
	}
	for id, at := range b.dropped {
		if time.Since(at) > b.ttl {
			delete(b.dropped, id)
		}
	}
	for id := range live {
		if _, ok := b.nodes[id]; !ok && id != b.id {
			unknown = true
		}
	}
	b.mu.Unlock()
	b.notify(changed)
	if full {
		b.poke(b.wake)
	}
	if recovered || unknown {
		// Back after trouble, or a node we have no shares of: read them
		// all. The flush of our own hash goes out meanwhile.
		b.askResync()
	}
}

// snapshot reads every live node's hash and replaces what this node knows
// of them. It reports whether it succeeded.
func (b *Backend) snapshot(ctx context.Context) bool {
	start := time.Now()
	cctx, cancel := context.WithTimeout(ctx, snapshotTimeout)
	defer cancel()
	b.commands.Add(1)
	b.resyncs.Add(1)
	res, err := snapshotScript.Run(cctx, b.rdb, []string{nodesKey}, nodePrefix).Slice()
	if err != nil {
		if ctx.Err() == nil {
			b.setErr("snapshot", err)
		}
		return false
	}
	seen := make(map[string]bool)
	var changed []string
	b.mu.Lock()
	for i := 0; i+1 < len(res); i += 2 {
		id, _ := res[i].(string)
		kv, _ := res[i+1].([]any)
		if id == "" || id == b.id {
			continue
		}
		seen[id] = true
		var ver uint64
		var inc string
		fields := make([]string, 0, len(kv))
		for j := 0; j+1 < len(kv); j += 2 {
			k, _ := kv[j].(string)
			v, _ := kv[j+1].(string)
			switch k {
			case verField:
				ver, _ = strconv.ParseUint(v, 10, 64)
			case incField:
				inc = v
			default:
				fields = append(fields, k, v)
			}
		}
		if nd := b.nodes[id]; nd != nil && (inc < nd.inc || inc == nd.inc && ver < nd.ver) {
			continue // a newer message already came
		}
		if at, ok := b.dropped[id]; ok && !at.Before(start) {
			continue // forgotten (left, or found dead) after this was read
		}
		changed = b.setNodeLocked(id, inc, ver, entriesOf(fields), true, changed)
	}
	for id, nd := range b.nodes {
		if !seen[id] && nd.seen.Before(start) {
			changed = b.dropLocked(id, changed)
		}
	}
	b.mu.Unlock()
	b.notify(changed)
	return true
}

// subscribeLoop applies the other nodes' changes as they are published.
func (b *Backend) subscribeLoop(ctx context.Context) {
	var mu sync.Mutex // guards ps against the close on ctx's end
	ps := b.rdb.Subscribe(ctx, channel)
	// A blocked receive does not watch ctx; closing the subscription ends it.
	stop := context.AfterFunc(ctx, func() {
		mu.Lock()
		ps.Close()
		mu.Unlock()
	})
	defer func() {
		stop()
		mu.Lock()
		ps.Close()
		mu.Unlock()
	}()
	backoff := 50 * time.Millisecond
	pinged := false // a ping is out: its answer must come within opTimeout
	for {
		wait := pingEvery
		if pinged {
			wait = opTimeout
		}
		msg, err := ps.ReceiveTimeout(ctx, wait)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			var ne interface{ Timeout() bool }
			if errors.As(err, &ne) && ne.Timeout() {
				if !pinged {
					b.commands.Add(1)
					if err = ps.Ping(ctx); err == nil {
						pinged = true
						continue
					}
				} else {
					// A connection that dies without a word (a host gone,
					// a firewall dropping the flow) answers nothing, and
					// TCP may take minutes to say so.
					err = errors.New("no answer to ping")
				}
			}
			b.mu.Lock()
			b.subbed = false
			b.mu.Unlock()
			b.setErr("subscribe", err)
			// A new subscription on a new connection, after a pause.
			mu.Lock()
			ps.Close()
			ps = b.rdb.Subscribe(ctx, channel)
			mu.Unlock()
			pinged = false
			t := time.NewTimer(backoff)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			backoff = min(2*backoff, maxBackoff)
			continue
		}
		backoff = 50 * time.Millisecond
		pinged = false
		switch m := msg.(type) {
		case *goredis.Subscription:
			// (Re)subscribed: whatever was published meanwhile is lost.
			b.mu.Lock()
			b.subbed = true
			b.mu.Unlock()
			b.askResync()
		case *goredis.Message:
			b.apply(m.Payload)
		}
	}
}

// apply takes one published message (see message).
func (b *Backend) apply(payload string) {
	var msg message
	if err := json.Unmarshal([]byte(payload), &msg); err != nil || msg.Node == "" || msg.Node == b.id {
		return
	}
	id, inc, kind, ver := msg.Node, msg.Inc, msg.Kind, msg.Ver
	entries := entriesOf(msg.Entries)
	var changed []string
	gap := false
	b.mu.Lock()
	nd := b.nodes[id]
	switch {
	case nd != nil && inc < nd.inc:
		// From an older incarnation of a node restarted under the same
		// id, late: void.
		b.mu.Unlock()
		return
	case nd != nil && inc > nd.inc:
		// The node restarted: what we had of it is void.
		changed = b.dropLocked(id, changed)
		nd = nil
	}
	switch {
	case nd != nil && ver <= nd.ver:
		// Old news: a snapshot already had it.
	case kind == "x":
		changed = b.dropLocked(id, changed)
	case kind == "f":
		changed = b.setNodeLocked(id, inc, ver, entries, true, changed)
	case kind == "d":
		// A missed message means missed entries: read everything again.
		gap = nd == nil || ver != nd.ver+1
		changed = b.setNodeLocked(id, inc, ver, entries, false, changed)
	}
	b.mu.Unlock()
	b.notify(changed)
	if gap {
		b.askResync()
	}
}

// notify tells the hub about rooms whose count moved.
func (b *Backend) notify(rooms []string) {
	f := b.onChange
	if f == nil {
		return
	}
	seen := make(map[string]bool, len(rooms))
	for _, room := range rooms {
		if !seen[room] {
			seen[room] = true
			f(room)
		}
	}
}
