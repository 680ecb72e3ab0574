package redis

import (
	"context"
	"fmt"
	"time"
)

// tickLoop is the ticker: the goroutine that, every tick, marks this node
// alive in Redis, renews its hash now and then, forgets the nodes that
// stopped marking themselves alive and, after trouble, has this node's
// hash rewritten and everyone's re-read. It exists apart from the others
// because liveness must not wait on a long flush or a full read: a node
// that misses its ticks counts as dead.
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

// tickOnce is one tick; renew also renews the TTL of this node's hash.
func (b *Backend) tickOnce(ctx context.Context, renew bool) {
	start := time.Now()
	cctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	b.stats.commands.Add(1)
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
	v := &b.view
	recovered := b.status.err != nil
	if recovered || mine == 0 {
		v.full = true // our hash is missing or may be stale
	}
	full := v.full
	var changed []string
	unknown := false
	for id, nd := range v.nodes {
		if !live[id] && nd.seen.Before(start) {
			changed = v.drop(id, changed)
		}
	}
	for id, at := range v.dropped {
		if time.Since(at) > b.ttl {
			delete(v.dropped, id)
		}
	}
	for id := range live {
		if _, ok := v.nodes[id]; !ok && id != b.id {
			unknown = true
		}
	}
	b.mu.Unlock()
	b.notify(changed)
	if full {
		poke(b.wake)
	}
	if recovered || unknown {
		// Back after trouble, or a node we have no shares of: read them
		// all. The flush of our own hash goes out meanwhile.
		b.askResync()
	}
}
