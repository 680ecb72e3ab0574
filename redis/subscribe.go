package redis

import (
	"context"
	"encoding/json"
	"errors"

	goredis "github.com/redis/go-redis/v9"
)

// errNoPong is a subscription that did not answer its ping.
var errNoPong = errors.New("no answer to ping")

// subscribeLoop is the subscriber: the goroutine that applies the other
// nodes' changes as Redis delivers them. It exists because a subscription
// holds a connection of its own that only ever reads, and only a blocked
// receive reads it.
//
// go-redis's PubSub does the reconnecting: a receive that fails drops the
// connection, and the next one dials again and subscribes anew, which
// shows as a *goredis.Subscription. What it does not do is notice a
// connection that dies without a word: PubSub.Ping only sends the PING,
// and the health check of its Channel and ChannelWithSubscriptions sends
// it the same way and never waits for the answer (nor reports a broken
// connection to the caller, which Health must show). So this loop pings
// after a silence and waits for the answer itself (see receive).
func (b *Backend) subscribeLoop(ctx context.Context) {
	ps := b.rdb.Subscribe(ctx, channel, controlChannel)
	// A blocked receive does not watch ctx; closing the subscription ends it.
	stop := context.AfterFunc(ctx, func() { ps.Close() })
	defer func() {
		stop()
		ps.Close()
	}()
	backoff := minBackoff
	for {
		msg, err := b.receive(ctx, ps)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			b.setSubscribed(false)
			b.setErr("subscribe", err)
			// The next receive dials again: not at once, for a Redis that
			// is down or refuses this node.
			if !sleep(ctx, backoff) {
				return
			}
			backoff = min(2*backoff, maxBackoff)
			continue
		}
		backoff = minBackoff
		switch m := msg.(type) {
		case *goredis.Subscription:
			// (Re)subscribed: whatever was published meanwhile is lost.
			b.setSubscribed(true)
			b.askResync()
		case *goredis.Message:
			if m.Channel == controlChannel {
				b.applyControl(m.Payload)
			} else {
				b.apply(m.Payload)
			}
		}
	}
}

// receive returns the next message of ps, or a *goredis.Pong. After
// pingEvery of silence it pings, and the answer must come within
// opTimeout: a connection that dies without a word (a host gone, a
// firewall dropping the flow) answers nothing, and TCP may take minutes to
// say so. The answer is awaited under a context deadline, not
// ReceiveTimeout's: then go-redis counts a silence as a broken connection
// and drops it, as it does any connection that fails, and the next receive
// dials anew.
func (b *Backend) receive(ctx context.Context, ps *goredis.PubSub) (any, error) {
	msg, err := ps.ReceiveTimeout(ctx, pingEvery)
	if !isTimeout(err) || ctx.Err() != nil {
		return msg, err
	}
	b.stats.commands.Add(1)
	if err := ps.Ping(ctx); err != nil {
		return nil, err
	}
	pctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	msg, err = ps.Receive(pctx)
	if err != nil && ctx.Err() == nil && (isTimeout(err) || pctx.Err() != nil) {
		err = errNoPong
	}
	return msg, err
}

// isTimeout reports whether err is a read that timed out.
func isTimeout(err error) bool {
	var ne interface{ Timeout() bool }
	return errors.As(err, &ne) && ne.Timeout()
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
	v := &b.view
	nd := v.nodes[id]
	switch {
	case nd != nil && inc < nd.inc:
		// From an older incarnation of a node restarted under the same
		// id, late: void.
		b.mu.Unlock()
		return
	case nd != nil && inc > nd.inc:
		// The node restarted: what we had of it is void.
		changed = v.drop(id, changed)
		nd = nil
	}
	switch {
	case nd != nil && ver <= nd.ver:
		// Old news: a snapshot already had it.
	case kind == "x":
		changed = v.drop(id, changed)
	case kind == "f":
		changed = v.setNode(id, inc, ver, entries, true, changed)
	case kind == "d":
		// A missed message means missed entries: read everything again.
		gap = nd == nil || ver != nd.ver+1
		changed = v.setNode(id, inc, ver, entries, false, changed)
	}
	b.mu.Unlock()
	b.notify(changed)
	if gap {
		b.askResync()
	}
}
