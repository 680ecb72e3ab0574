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
//
// The files, by responsibility: options.go (settings, checked once),
// shares.go (the view of every node's shares, and presence.Backend over
// it), status.go (whether the view is current: Ready, Health, the log),
// and one file per goroutine of Run: flush.go, tick.go, resync.go,
// subscribe.go. scripts.go holds the Lua scripts, start.go the first
// contact with Redis and its errors, metrics.go the Prometheus collector.
package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/presence/presence/presence"
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
	opTimeout       = time.Second           // one Redis call
	snapshotTimeout = 5 * time.Second       // reading every node's shares
	minBackoff      = 50 * time.Millisecond // between retries of a broken subscription,
	maxBackoff      = time.Second           // doubling from the one to the other
)

// Backend implements presence.Backend and presence.Shared over Redis.
type Backend struct {
	settings // the checked options, fixed at New
	rdb      *goredis.Client
	onChange func(room string) // set by Run before its goroutines start, then only read
	wake     chan struct{}     // cap 1: local shares changed, the flusher should write them
	resync   chan struct{}     // cap 1: the view of the others may have gaps, the resyncer should read them all
	stats    counters          // atomic: read by Stats and the metrics at any time

	// onDisconnect, set as onChange is, takes the disconnects other nodes
	// announce (control.go).
	onDisconnect func(presence.Disconnect)

	mu     sync.Mutex // guards view and status
	view   view       // every node's shares as this node knows them
	status status     // whether the view is current, and the trouble if not
}

// New connects to nothing yet: it checks the options and returns a Backend
// that Run brings to life.
func New(opts Options) (*Backend, error) {
	set, ro, err := opts.check()
	if err != nil {
		return nil, err
	}
	b := &Backend{
		settings: set,
		rdb:      goredis.NewClient(ro),
		wake:     make(chan struct{}, 1),
		resync:   make(chan struct{}, 1),
		view:     newView(),
		status:   status{err: errors.New("not connected to redis yet"), reason: errNotRead, since: time.Now()},
	}
	if opts.Metrics != nil {
		if err := opts.Metrics.Register(newCollector(b)); err != nil {
			b.rdb.Close()
			return nil, fmt.Errorf("redis metrics: %w", err)
		}
	}
	return b, nil
}

// URL returns the Redis URL without its password.
func (b *Backend) URL() string { return b.url }

// NodeID returns this node's id.
func (b *Backend) NodeID() string { return b.id }

// Run keeps this node's shares in Redis and its view of the other nodes
// current until ctx ends. onChange is called, with no lock held, for every
// room whose count moved because of another node; onDisconnect, if not
// nil, for every disconnect another node announced (Announce). Run returns when its
// goroutines have stopped; then Close removes this node's shares.
//
// Run owns four goroutines, one per job that must not wait on another:
// the flusher writes this node's changes (flush.go), the ticker keeps it
// alive and finds dead nodes (tick.go), the resyncer re-reads every share
// after a gap (resync.go), and the subscriber applies the others' changes
// (subscribe.go). Each ends with ctx.
func (b *Backend) Run(ctx context.Context, onChange func(room string), onDisconnect func(presence.Disconnect)) {
	b.onChange, b.onDisconnect = onChange, onDisconnect
	var wg sync.WaitGroup
	wg.Go(func() { b.flushLoop(ctx) })
	wg.Go(func() { b.tickLoop(ctx) })
	wg.Go(func() { b.resyncLoop(ctx) })
	wg.Go(func() { b.subscribeLoop(ctx) })
	wg.Wait()
}

// Close removes this node's shares at once, telling the other nodes, and
// closes the connections. Call it after Run has returned.
func (b *Backend) Close(ctx context.Context) error {
	b.mu.Lock()
	b.view.ver++
	msg, _ := json.Marshal(message{Node: b.id, Inc: b.inc, Ver: b.view.ver, Kind: "x"})
	b.mu.Unlock()
	b.stats.commands.Add(1)
	err := goneScript.Run(ctx, b.rdb, []string{nodeKey(b.id), nodesKey}, b.id, channel, string(msg)).Err()
	if cerr := b.rdb.Close(); err == nil {
		err = cerr
	}
	return err
}

// askResync asks the resyncer for one more full read, unless one is asked
// for and not started yet: it would read the same.
func (b *Backend) askResync() {
	b.mu.Lock()
	b.status.resyncAsked = true // with the poke, under mu: see takeResync
	poke(b.resync)
	b.mu.Unlock()
}

// takeResync is the resyncer taking every read asked for so far: the one
// it starts serves them all. It returns a func to call when the read is
// over. From an ask until the read is over, status says a read is due:
// tests wait for it to end before they count reads.
func (b *Backend) takeResync() (done func()) {
	b.mu.Lock()
	select { // asked again during the pause: this read serves that too
	case <-b.resync:
	default:
	}
	b.status.resyncAsked, b.status.resyncing = false, true
	b.mu.Unlock()
	return func() {
		b.mu.Lock()
		b.status.resyncing = false
		b.mu.Unlock()
	}
}

// poke wakes the goroutine behind ch without blocking.
func poke(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// sleep waits for d, or less if ctx ends first; it reports whether ctx is
// still alive.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// notify tells the hub about rooms whose count moved, once each.
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

func boolArg(v bool) int {
	if v {
		return 1
	}
	return 0
}
