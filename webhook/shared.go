package webhook

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// With an Arbiter, every node appends what it tells to the cluster's one
// outbox, and one node at a time, the holder of the lease, delivers it
// from the head: the events of a room reach the receiver in the order of
// their numbers, whichever nodes told them.

// look renews or takes the lease and, if this node is the sender and may
// send now, tries the batch at the head of the outbox once.
func (n *Notifier) look(ctx context.Context, now time.Time) {
	limit := 0
	if !now.Before(n.nextTry) {
		limit = maxBatch
	}
	b, err := n.set.Arbiter.Next(ctx, n.inc, limit)
	n.nextLook = now.Add(sweepEvery)
	if err != nil {
		n.set.Logger.Warn("webhook: could not read the outbox", "err", err)
		n.sender = false
		return
	}
	if b.Sender != n.sender {
		n.set.Logger.Info("webhook: sender of the cluster", "this_node", b.Sender)
	}
	n.sender = b.Sender
	n.m.queued.Store(int64(b.Waiting))
	if !b.Sender {
		return
	}
	n.nextLook = now.Add(pollEvery)
	if len(b.Seqs) > 0 {
		n.deliver(ctx, b, now)
	}
}

// deliver tries b once, keeping the lease while the request lasts, and
// removes it from the outbox once delivered.
func (n *Notifier) deliver(ctx context.Context, b Batch, now time.Time) error {
	if b.ID == n.triedID {
		n.m.retried.Inc()
	}
	n.triedID = b.ID
	events := make([]Event, len(b.Seqs))
	for i, t := range b.Transitions {
		events[i] = eventOf(t, b.Seqs[i])
	}
	stop := n.keepLease(ctx)
	err := n.post(ctx, b.ID, events, now)
	stop()
	if err != nil {
		n.m.failed.Inc()
		n.nextTry = time.Now().Add(n.backoff)
		n.set.Logger.Warn("webhook: delivery failed; trying again", "batch", b.ID, "events", len(events), "in", n.backoff.String(), "err", err)
		n.backoff = min(2*n.backoff, n.set.MaxBackoff)
		return err
	}
	n.m.sent.Add(float64(len(events)))
	n.m.queued.Store(int64(max(0, b.Waiting-len(events))))
	if err := n.set.Arbiter.Delivered(ctx, b.Seqs[len(b.Seqs)-1]); err != nil {
		// Told, and still in the outbox: told again, under the same id.
		n.set.Logger.Warn("webhook: delivered, and could not say so: it will be told again", "batch", b.ID, "err", err)
	}
	n.triedID = ""
	n.backoff = n.set.MinBackoff
	n.nextTry = now.Add(batchGap)
	return nil
}

// keepLease renews the lease every pollEvery until stop, so that a request
// slower than the node timeout does not hand the outbox to another node
// while it lasts.
func (n *Notifier) keepLease(ctx context.Context) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(pollEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				_, _ = n.set.Arbiter.Next(ctx, n.inc, 0)
			}
		}
	}()
	return func() { cancel(); wg.Wait() }
}

// drainShared delivers what the cluster has to tell while this node is the
// sender, until the outbox is empty or ctx ends, then gives up the lease:
// for a node going away. What is left waits for the next sender.
func (n *Notifier) drainShared(ctx context.Context) error {
	a := n.set.Arbiter
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		defer cancel()
		_ = a.Release(rctx)
	}()
	for ctx.Err() == nil {
		if wait := time.Until(n.nextTry); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
			case <-t.C:
			}
			t.Stop()
			continue
		}
		b, err := a.Next(ctx, n.inc, maxBatch)
		if err != nil {
			return fmt.Errorf("webhook: %w", err)
		}
		if !b.Sender || len(b.Seqs) == 0 {
			break // another node delivers, or nothing is left
		}
		_ = n.deliver(ctx, b, time.Now())
	}
	n.logDrops(true)
	switch {
	case len(n.claiming) > 0:
		return fmt.Errorf("webhook: %d transitions not claimed: the arbiter failed", len(n.claiming))
	case ctx.Err() != nil:
		return fmt.Errorf("webhook: events not delivered, left for the next sender: %w", context.Cause(ctx))
	}
	return nil
}
