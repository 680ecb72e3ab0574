package redis

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/presence/presence/presence"
	"github.com/presence/presence/webhook"
)

// Webhooks across nodes. Each node claims its own transitions (its first
// stream of a room or of a person in it arriving, its last leaving); Redis
// keeps, per room, how many nodes hold the room and each person, so that
// only the first to arrive and the last to leave is the cluster's
// transition, told once. A node's claims are also kept under its name, so
// that when it dies another node ends them (Orphans).
//
// What the cluster has to tell waits in one outbox, in the order of its
// numbers, and one node at a time, the holder of a lease that it renews
// while it lives, delivers it from the head (Next, Delivered): so a room's
// events reach the receiver in order, whichever nodes told them. When the
// sender dies its lease runs out within the node timeout and another node
// takes it, and the batch it was trying, under the same id.
//
// Keys: a set of the holders (node id, a tab, incarnation) that claimed;
// per holder a hash of what it holds, "room\tperson" (person "" for the
// room itself) to the person's name; per room a hash of person to the
// holders that hold them; the sequence of transitions told; the outbox, a
// list; the lease; the batch being tried. The scripts are in
// webhook_scripts.go.
const (
	whHolders    = "presence:wh:holders"
	whHeldPrefix = "presence:wh:held:"  // + holder
	whRoomPrefix = "presence:wh:room:"  // + room
	whSeq        = "presence:wh:seq"    // the number of the last transition told
	whOutbox     = "presence:wh:outbox" // what the cluster has to tell, oldest first
	whLease      = "presence:wh:sender" // the holder that delivers, for the node timeout
	whTried      = "presence:wh:tried"  // the batch being tried: "last seq\tid"
	// claimChunk bounds the transitions of one script call.
	claimChunk = 1000
)

// holder is this node's name among the claims.
func (b *Backend) holder() string { return b.id + "\t" + b.inc }

// Claim records this node's transitions, in order, and returns for each
// its number in the cluster's order if it is the cluster's to tell, else
// 0, and how many of the oldest waiting events the outbox dropped to keep
// the newest limit: see webhook.Arbiter.
func (b *Backend) Claim(ctx context.Context, ts []presence.Transition, limit int) ([]uint64, int, error) {
	out := make([]uint64, 0, len(ts))
	dropped := 0
	keys := []string{whHolders, whHeldPrefix + b.holder(), whSeq, whOutbox}
	for len(ts) > 0 {
		chunk := ts[:min(len(ts), claimChunk)]
		ts = ts[len(chunk):]
		args := make([]any, 0, 3+4*len(chunk))
		args = append(args, b.holder(), whRoomPrefix, limit)
		for _, t := range chunk {
			args = append(args, t.Room, t.Member.ID, t.Member.Name, boolArg(t.Arrived))
		}
		res, err := call(b, ctx, func(ctx context.Context) ([]int64, error) {
			return claimScript.Run(ctx, b.rdb, keys, args...).Int64Slice()
		})
		if err == nil && len(res) != len(chunk)+1 {
			err = fmt.Errorf("%d results for %d transitions", len(res), len(chunk))
		}
		if err != nil {
			return nil, 0, fmt.Errorf("claim webhook transitions: %w", err)
		}
		for _, seq := range res[:len(chunk)] {
			out = append(out, uint64(max(seq, 0)))
		}
		dropped += int(res[len(chunk)])
	}
	return out, dropped, nil
}

// Orphans ends the claims of dead nodes, appends what their end tells to
// the outbox, and returns how many of the oldest waiting events the outbox
// dropped: see webhook.Arbiter.
func (b *Backend) Orphans(ctx context.Context, limit int) (int, error) {
	keys := []string{whHolders, nodesKey, whSeq, whOutbox}
	dropped, err := call(b, ctx, func(ctx context.Context) (int64, error) {
		return orphanScript.Run(ctx, b.rdb, keys, whRoomPrefix, whHeldPrefix, b.holder(), b.id, limit).Int64()
	})
	if err != nil {
		return 0, fmt.Errorf("end dead nodes' webhook claims: %w", err)
	}
	return int(dropped), nil
}

// Next takes or renews this node's lease as the cluster's sender and, if
// it has it, returns the batch to deliver: see webhook.Arbiter.
func (b *Backend) Next(ctx context.Context, prefix string, limit int) (webhook.Batch, error) {
	keys := []string{whLease, whOutbox, whTried}
	res, err := call(b, ctx, func(ctx context.Context) ([]any, error) {
		return nextScript.Run(ctx, b.rdb, keys, b.holder(), b.ttl.Milliseconds(), limit, prefix).Slice()
	})
	if err == nil && len(res) < 2 {
		err = fmt.Errorf("%d results", len(res))
	}
	if err != nil {
		return webhook.Batch{}, fmt.Errorf("webhook outbox: %w", err)
	}
	sender, _ := res[0].(int64)
	waiting, _ := res[1].(int64)
	bt := webhook.Batch{Sender: sender == 1, Waiting: int(waiting)}
	if len(res) > 2 {
		bt.ID, _ = res[2].(string)
		for _, r := range res[3:] {
			s, _ := r.(string)
			t, seq, err := parseOutEntry(s)
			if err != nil {
				return webhook.Batch{}, fmt.Errorf("webhook outbox: %w", err)
			}
			bt.Transitions, bt.Seqs = append(bt.Transitions, t), append(bt.Seqs, seq)
		}
	}
	return bt, nil
}

// Delivered removes from the outbox every event numbered up to last: told.
func (b *Backend) Delivered(ctx context.Context, last uint64) error {
	_, err := call(b, ctx, func(ctx context.Context) (int64, error) {
		return deliveredScript.Run(ctx, b.rdb, []string{whOutbox, whTried}, last).Int64()
	})
	if err != nil {
		return fmt.Errorf("webhook outbox: %w", err)
	}
	return nil
}

// Release gives up the lease, if this node has it, so that another node
// takes it at once: for a node going away.
func (b *Backend) Release(ctx context.Context) error {
	_, err := call(b, ctx, func(ctx context.Context) (int64, error) {
		return releaseScript.Run(ctx, b.rdb, []string{whLease}, b.holder()).Int64()
	})
	if err != nil {
		return fmt.Errorf("webhook lease: %w", err)
	}
	return nil
}

// call runs one Redis call within opTimeout, counted.
func call[T any](b *Backend, ctx context.Context, f func(context.Context) (T, error)) (T, error) {
	b.stats.commands.Add(1)
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	v, err := f(ctx)
	if err != nil {
		b.stats.errs.Add(1)
	}
	return v, err
}

// outEntry is the outbox's text of a transition numbered seq.
func outEntry(t presence.Transition, seq uint64) string {
	return strconv.FormatUint(seq, 10) + "\t" + strconv.Itoa(boolArg(t.Arrived)) + "\t" + t.Room + "\t" + t.Member.ID + "\t" + t.Member.Name
}

// parseOutEntry reads an outbox entry back.
func parseOutEntry(s string) (presence.Transition, uint64, error) {
	f := strings.SplitN(s, "\t", 5)
	if len(f) != 5 {
		return presence.Transition{}, 0, fmt.Errorf("bad outbox entry %q", s)
	}
	seq, err := strconv.ParseUint(f[0], 10, 64)
	if err != nil {
		return presence.Transition{}, 0, fmt.Errorf("bad outbox entry %q: %w", s, err)
	}
	return presence.Transition{Room: f[2], Member: presence.MemberInfo{ID: f[3], Name: f[4]}, Arrived: f[1] == "1"}, seq, nil
}
