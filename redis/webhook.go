package redis

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/presence/presence/presence"
)

// Webhooks across nodes. Each node claims its own transitions (its first
// stream of a room or of a person in it arriving, its last leaving); Redis
// keeps, per room, how many nodes hold the room and each person, so that
// only the first to arrive and the last to leave is the cluster's
// transition, told once. A node's claims are also kept under its name, so
// that when it dies another node ends them (Orphans); and what it has to
// tell waits in its outbox until delivered, so that when it dies another
// node tells it.
//
// Keys: a set of the holders (node id, a tab, incarnation) that claimed;
// per holder a hash of what it holds, "room\tperson" (person "" for the
// room itself) to the person's name, and its outbox, a list; per room a
// hash of person to the holders that hold them; the sequence of
// transitions told. The scripts are in webhook_scripts.go.
const (
	whHolders    = "presence:wh:holders"
	whHeldPrefix = "presence:wh:held:" // + holder
	whOutPrefix  = "presence:wh:out:"  // + holder
	whRoomPrefix = "presence:wh:room:" // + room
	whSeq        = "presence:wh:seq"   // the number of the last transition told
	// claimChunk bounds the transitions of one script call.
	claimChunk = 1000
)

// holder is this node's name among the claims.
func (b *Backend) holder() string { return b.id + "\t" + b.inc }

// Claim records this node's transitions, in order, and returns for each
// its number in the cluster's order if it is this node's to tell, else 0;
// those it tells wait in its outbox, which keeps the newest limit: see
// webhook.Arbiter.
func (b *Backend) Claim(ctx context.Context, ts []presence.Transition, limit int) ([]uint64, error) {
	out := make([]uint64, 0, len(ts))
	keys := []string{whHolders, whHeldPrefix + b.holder(), whSeq, whOutPrefix + b.holder()}
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
		if err == nil && len(res) != len(chunk) {
			err = fmt.Errorf("%d results for %d transitions", len(res), len(chunk))
		}
		if err != nil {
			return nil, fmt.Errorf("claim webhook transitions: %w", err)
		}
		for _, seq := range res {
			out = append(out, uint64(max(seq, 0)))
		}
	}
	return out, nil
}

// Orphans ends the claims of dead nodes, makes their outboxes this node's,
// and returns what this node has to tell of them, in order, with the
// numbers: see webhook.Arbiter.
func (b *Backend) Orphans(ctx context.Context, limit int) ([]presence.Transition, []uint64, error) {
	keys := []string{whHolders, nodesKey, whSeq, whOutPrefix + b.holder()}
	res, err := call(b, ctx, func(ctx context.Context) ([]string, error) {
		return orphanScript.Run(ctx, b.rdb, keys, whRoomPrefix, whHeldPrefix, whOutPrefix, b.holder(), b.id, limit).StringSlice()
	})
	if err != nil {
		return nil, nil, fmt.Errorf("end dead nodes' webhook claims: %w", err)
	}
	ts := make([]presence.Transition, 0, len(res))
	seqs := make([]uint64, 0, len(res))
	for _, entry := range res {
		t, seq, err := parseOutEntry(entry)
		if err != nil {
			return nil, nil, fmt.Errorf("end dead nodes' webhook claims: %w", err)
		}
		ts, seqs = append(ts, t), append(seqs, seq)
	}
	return ts, seqs, nil
}

// Delivered removes the oldest n entries of this node's outbox: told.
func (b *Backend) Delivered(ctx context.Context, n int) error {
	_, err := call(b, ctx, func(ctx context.Context) (string, error) {
		return b.rdb.LTrim(ctx, whOutPrefix+b.holder(), int64(n), -1).Result()
	})
	if err != nil {
		return fmt.Errorf("webhook outbox: %w", err)
	}
	return nil
}

// Rewrite makes this node's outbox the transitions given, in order, after
// trouble may have made it unlike the node's queue.
func (b *Backend) Rewrite(ctx context.Context, ts []presence.Transition, seqs []uint64) error {
	args := make([]any, len(ts))
	for i, t := range ts {
		args[i] = outEntry(t, seqs[i])
	}
	_, err := call(b, ctx, func(ctx context.Context) (int64, error) {
		return rewriteScript.Run(ctx, b.rdb, []string{whOutPrefix + b.holder()}, args...).Int64()
	})
	if err != nil {
		return fmt.Errorf("webhook outbox: %w", err)
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
