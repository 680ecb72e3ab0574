// Package webhook tells a backend over HTTP who comes and goes: signed
// POSTs of room_occupied, room_vacated, member_joined and member_left, in
// batches, delivered at least once and in order per room. It is an HTTP
// client and knows nothing of the service's handlers: the hub tells it of
// every arrival and leave (Observe, as the presence.Observer of the hub), and
// one goroutine (Run) owns the rest.
//
// A change is told once it has held for Options.Settle, so that someone who
// comes and goes within it is never mentioned. With an Arbiter, a shared
// store decides which node of a cluster tells each transition, ends the
// presence of dead nodes, and keeps one outbox for the cluster that one
// node at a time delivers (shared.go), so that order holds across nodes.
package webhook

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/presence/presence/presence"
)

// The hub tells a Notifier every arrival and leave.
var _ presence.Observer = (*Notifier)(nil)

// Notifier sends the webhooks of one node.
type Notifier struct {
	set    settings
	client *http.Client
	inc    string        // this run's prefix of batch ids
	wake   chan struct{} // cap 1: a change is waiting and the owner may be asleep
	m      *metrics

	mu    sync.Mutex // guards local
	local local

	// The owner goroutine's own, unguarded.
	q         queue
	claiming  []presence.Transition // settled, not yet claimed (the arbiter failed)
	seq       uint64                // of the last event told, without an arbiter
	batch     batch                 // the batch being tried, if n > 0, without an arbiter
	backoff   time.Duration         // the wait after the next failure
	nextTry   time.Time             // no request before
	nextSweep time.Time
	// With an arbiter: whether this node was the cluster's sender at the
	// last look, when to look next, and the id of the batch it last tried.
	sender   bool
	nextLook time.Time
	triedID  string
	unlogged int // drops not yet logged
	loggedAt time.Time
}

// batch is a run of the queue's events, tried until delivered.
type batch struct {
	first uint64
	n     int
}

// New checks opts and returns a Notifier that Run brings to life.
func New(opts Options) (*Notifier, error) {
	set, err := opts.check()
	if err != nil {
		return nil, err
	}
	m, err := newMetrics(set.Metrics)
	if err != nil {
		return nil, err
	}
	var r [6]byte
	_, _ = rand.Read(r[:])
	n := &Notifier{
		set: set,
		client: &http.Client{
			Timeout: requestTimeout,
			// A redirect would turn the POST into a GET: a 3xx is an
			// answer other than 2xx, retried like the others.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		inc:     hex.EncodeToString(r[:]),
		wake:    make(chan struct{}, 1),
		m:       m,
		local:   newLocal(),
		q:       queue{limit: set.Queue},
		backoff: set.MinBackoff,
		// Numbers that increase across restarts too, unless the clock
		// goes back: microseconds since 1970 stay exact in JSON numbers
		// read as float64 until 2255.
		seq: uint64(time.Now().UnixMicro()),
	}
	return n, nil
}

// Observe is told every stream arriving in or leaving a room of this node
// (presence.Observer). It is quick and never blocks: the hub
// calls it under its lock.
func (n *Notifier) Observe(room string, m presence.Member, arrived bool) {
	if !n.set.wanted(room) {
		return
	}
	n.mu.Lock()
	was := n.local.pending.Len()
	n.local.observe(room, m, arrived, time.Now())
	now := n.local.pending.Len()
	n.mu.Unlock()
	if was == 0 && now > 0 {
		select {
		case n.wake <- struct{}{}:
		default:
		}
	}
}

// Run delivers until ctx ends; then Drain may try the rest. It is the one
// goroutine that sends.
func (n *Notifier) Run(ctx context.Context) {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		now := time.Now()
		n.settle(ctx, now.Add(-n.set.Settle))
		if n.set.Arbiter != nil && !now.Before(n.nextSweep) {
			n.sweep(ctx)
			n.nextSweep = now.Add(sweepEvery)
		}
		switch {
		case n.set.Arbiter != nil:
			if !now.Before(n.nextLook) {
				n.look(ctx, now)
			}
		case len(n.q.items) > 0 && !now.Before(n.nextTry):
			n.send(ctx, now)
		}
		n.logDrops(false)
		t.Reset(n.sleep(time.Now()))
		select {
		case <-ctx.Done():
			return
		case <-n.wake:
		case <-t.C:
		}
	}
}

// sleep is how long the owner may sleep after now: until the next change
// settles, the next sweep, or the next try.
func (n *Notifier) sleep(now time.Time) time.Duration {
	d := time.Minute
	n.mu.Lock()
	at, ok := n.local.next()
	n.mu.Unlock()
	if ok {
		d = min(d, at.Add(n.set.Settle).Sub(now))
	}
	if len(n.claiming) > 0 {
		d = min(d, time.Second) // the arbiter failed: try again
	}
	if n.set.Arbiter != nil {
		d = min(d, n.nextSweep.Sub(now), n.nextLook.Sub(now))
	} else if len(n.q.items) > 0 {
		d = min(d, n.nextTry.Sub(now))
	}
	// Changes settle together, a few per wake rather than one: with an
	// arbiter each wake is a call to Redis.
	return max(d, minWake)
}

// Drain tells what has not settled yet and tries to deliver everything
// queued until ctx ends: for a node going away. Call it after Run returned.
func (n *Notifier) Drain(ctx context.Context) error {
	n.settle(ctx, time.Now().Add(time.Hour))
	if n.set.Arbiter != nil {
		return n.drainShared(ctx)
	}
	for len(n.q.items) > 0 && ctx.Err() == nil {
		wait := time.NewTimer(max(0, time.Until(n.nextTry)))
		select {
		case <-ctx.Done():
		case <-wait.C:
			n.send(ctx, time.Now())
		}
		wait.Stop()
	}
	n.logDrops(true)
	left := len(n.q.items) + len(n.claiming)
	switch {
	case left == 0:
		return nil
	case ctx.Err() != nil:
		return fmt.Errorf("webhook: %d events not delivered: %w", left, context.Cause(ctx))
	default:
		return fmt.Errorf("webhook: %d transitions not claimed: the arbiter failed", left)
	}
}

// settle takes the changes recorded up to until, has the arbiter claim
// them, and queues the events of those this node tells.
func (n *Notifier) settle(ctx context.Context, until time.Time) {
	n.mu.Lock()
	ts := n.local.take(until)
	n.mu.Unlock()
	n.claiming = append(n.claiming, ts...)
	if len(n.claiming) == 0 {
		return
	}
	if over := len(n.claiming) - n.set.Queue; over > 0 {
		// The arbiter has been failing for long: the queue's bound holds
		// here too, and the oldest go.
		n.claiming = slices.Delete(n.claiming, 0, over)
		n.m.dropped.Add(float64(over))
		n.unlogged += over
	}
	if a := n.set.Arbiter; a != nil {
		// What this node tells goes to the cluster's outbox, and the
		// cluster's sender delivers it.
		got, dropped, err := a.Claim(ctx, n.claiming, n.set.Queue)
		if err != nil || len(got) != len(n.claiming) {
			n.set.Logger.Warn("webhook: could not claim transitions; trying again", "transitions", len(n.claiming), "err", err)
			return
		}
		n.countDrops(dropped)
		if n.sender {
			n.nextLook = time.Time{} // deliver it at once
		}
		n.claiming = n.claiming[:0]
		return
	}
	seqs := make([]uint64, len(n.claiming))
	for i := range seqs {
		n.seq++
		seqs[i] = n.seq
	}
	for i, t := range n.claiming {
		if seqs[i] > 0 {
			n.enqueue(told{t, seqs[i]})
		}
	}
	n.claiming = n.claiming[:0]
}

// sweep has the arbiter end the presence of dead nodes: what their end
// tells goes to the cluster's outbox.
func (n *Notifier) sweep(ctx context.Context) {
	dropped, err := n.set.Arbiter.Orphans(ctx, n.set.Queue)
	if err != nil {
		n.set.Logger.Warn("webhook: could not look for dead nodes", "err", err)
		return
	}
	n.countDrops(dropped)
}

// countDrops counts events dropped from a full queue, to be logged.
func (n *Notifier) countDrops(d int) {
	if d > 0 {
		n.m.dropped.Add(float64(d))
		n.unlogged += d
	}
}

func (n *Notifier) enqueue(it told) {
	n.countDrops(n.q.push(it))
	n.m.queued.Store(int64(len(n.q.items)))
}

// logDrops logs the events dropped since the last log, at most once a
// second unless now.
func (n *Notifier) logDrops(now bool) {
	if n.unlogged == 0 || (!now && time.Since(n.loggedAt) < time.Second) {
		return
	}
	n.set.Logger.Warn("webhook: queue full, oldest events dropped", "dropped", n.unlogged, "queue", n.set.Queue)
	n.unlogged, n.loggedAt = 0, time.Now()
}

// send tries the current batch once, or the next one: without an arbiter.
func (n *Notifier) send(ctx context.Context, now time.Time) {
	b := &n.batch
	if b.n > 0 && n.q.first > b.first {
		// Drops ate the batch's oldest: what is left is another batch.
		cut := n.q.first - b.first
		b.n = max(0, b.n-int(min(cut, uint64(b.n))))
		b.first = n.q.first
	}
	retry := b.n > 0
	if !retry {
		*b = batch{first: n.q.first, n: min(len(n.q.items), maxBatch)}
	}
	if retry {
		n.m.retried.Inc()
	}
	id := fmt.Sprintf("%s-%d-%d", n.inc, b.first, b.n)
	events := make([]Event, b.n)
	for i, it := range n.q.items[:b.n] {
		events[i] = eventOf(it.t, it.seq)
	}
	err := n.post(ctx, id, events, now)
	if err != nil {
		n.m.failed.Inc()
		n.nextTry = time.Now().Add(n.backoff)
		n.set.Logger.Warn("webhook: delivery failed; trying again", "batch", id, "events", b.n, "in", n.backoff.String(), "err", err)
		n.backoff = min(2*n.backoff, n.set.MaxBackoff)
		return
	}
	n.m.sent.Add(float64(b.n))
	n.q.discard(b.n)
	n.m.queued.Store(int64(len(n.q.items)))
	*b = batch{}
	n.backoff = n.set.MinBackoff
	n.nextTry = now.Add(batchGap)
}
