package redis

import (
	"context"
	"encoding/json"
	"time"
)

// flushLoop is the flusher: the goroutine that writes this node's changed
// shares to Redis, in batches. It exists so that Join and Leave never wait
// on Redis: they mark their entry dirty and poke wake, and the flusher
// writes whatever has piled up, at most once per flush gap.
func (b *Backend) flushLoop(ctx context.Context) {
	var last time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-b.wake:
		}
		if wait := time.Until(last.Add(b.flushGap())); wait > 0 && !sleep(ctx, wait) {
			return
		}
		last = time.Now()
		b.flush(ctx)
	}
}

// flushGap is the least time between two flushes of this node.
func (b *Backend) flushGap() time.Duration {
	b.mu.Lock()
	nodes := len(b.view.nodes) + 1
	b.mu.Unlock()
	return min(max(time.Duration(nodes)*flushGapPerNode, minFlushGap), maxFlushGap)
}

// flush sends the changed shares (or all of them after trouble) in one
// script call that also publishes them to the other nodes.
func (b *Backend) flush(ctx context.Context) {
	b.mu.Lock()
	v := &b.view
	if len(v.dirty) == 0 && !v.full {
		b.mu.Unlock()
		return
	}
	full := v.full
	v.ver++
	msg := message{Node: b.id, Inc: b.inc, Ver: v.ver, Kind: "d"}
	var set, del []any
	add := func(e entry, s share) {
		f := e.field()
		if s.conns > 0 {
			val := e.value(s)
			set = append(set, f, val)
			msg.Entries = append(msg.Entries, f, val)
		} else {
			del = append(del, f)
			msg.Entries = append(msg.Entries, f, "0")
		}
	}
	if full {
		msg.Kind = "f"
		for room, t := range v.local {
			if n := t.Anonymous(); n > 0 {
				add(entry{room: room}, share{conns: n})
			}
			t.Each(func(id string, conns int, name string, signed bool) {
				add(entry{room, id}, share{conns, name, signed})
			})
		}
	} else {
		for e := range v.dirty {
			add(e, v.localShare(e))
		}
	}
	payload, _ := json.Marshal(msg)
	args := []any{(hashTTLFactor * b.ttl).Milliseconds(), v.ver, b.inc, boolArg(full), channel, string(payload), len(set) / 2}
	args = append(append(args, set...), del...)
	clear(v.dirty)
	v.full = false
	b.mu.Unlock()

	cctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	b.stats.commands.Add(1)
	ok, err := flushScript.Run(cctx, b.rdb, []string{nodeKey(b.id)}, args...).Int()
	switch {
	case err != nil:
		if ctx.Err() == nil {
			b.setErr("flush", err)
		}
	case ok == 0: // our hash is gone (expired, FLUSHALL, restart): rewrite it
		b.mu.Lock()
		b.view.full = true
		b.mu.Unlock()
		poke(b.wake)
	}
}
