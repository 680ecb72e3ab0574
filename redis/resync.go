package redis

import (
	"context"
	"math/rand/v2"
	"strconv"
	"time"
)

// resyncLoop is the resyncer: the goroutine that re-reads every node's
// shares when asked (after a missed message, a reconnect, trouble, or a
// node it knows nothing of), and declares the view current again when the
// read succeeds. It exists apart from the ticker because a full read may
// take seconds, and the ticks must go on renewing this node meanwhile. It
// waits a short random pause first, so that nodes back from the same
// trouble do not all read at once.
func (b *Backend) resyncLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-b.resync:
		}
		if !sleep(ctx, rand.N(b.tick/4+time.Millisecond)) {
			return
		}
		done := b.takeResync()
		if b.snapshot(ctx) {
			b.readBlocks(ctx) // before: a node ready refuses the blocked
			b.healed()
		}
		done()
	}
}

// snapshot reads every live node's hash and replaces what this node knows
// of them. It reports whether it succeeded.
func (b *Backend) snapshot(ctx context.Context) bool {
	start := time.Now()
	cctx, cancel := context.WithTimeout(ctx, snapshotTimeout)
	defer cancel()
	b.stats.commands.Add(1)
	b.stats.resyncs.Add(1)
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
	v := &b.view
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
			val, _ := kv[j+1].(string)
			switch k {
			case verField:
				ver, _ = strconv.ParseUint(val, 10, 64)
			case incField:
				inc = val
			default:
				fields = append(fields, k, val)
			}
		}
		if nd := v.nodes[id]; nd != nil && (inc < nd.inc || inc == nd.inc && ver < nd.ver) {
			continue // a newer message already came
		}
		if at, ok := v.dropped[id]; ok && !at.Before(start) {
			continue // forgotten (left, or found dead) after this was read
		}
		changed = v.setNode(id, inc, ver, entriesOf(fields), true, changed)
	}
	for id, nd := range v.nodes {
		if !seen[id] && nd.seen.Before(start) {
			changed = v.drop(id, changed)
		}
	}
	b.mu.Unlock()
	b.notify(changed)
	return true
}
