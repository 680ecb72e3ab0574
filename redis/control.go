package redis

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/presence/presence/presence"
)

// controlChannel carries the server API's disconnects from the node that
// took the call to every other node, on the subscription that carries the
// shares (see subscribeLoop). blocksKey keeps the blocks under way, for the
// nodes that did not hear of them: a sorted set of member IDs scored by
// the Redis time (ms) their block lasts until.
const (
	controlChannel = "presence:control"
	blocksKey      = "presence:blocks"
)

// The Backend carries disconnects: this line makes a drifted signature a
// build error rather than disconnects that stay on one node.
var _ presence.Announcer = (*Backend)(nil)

// control is a message of controlChannel: a presence.Disconnect, from
// node Node, with its block in milliseconds.
type control struct {
	Node    string `json:"n"`
	User    string `json:"u,omitempty"`
	Room    string `json:"r,omitempty"`
	BlockMS int64  `json:"b,omitempty"`
}

// Announce implements presence.Announcer: one script call that publishes
// d, which every node subscribed at that moment gets within milliseconds,
// and keeps a block in blocksKey. Pub/sub delivers at most once: a node
// whose subscription is broken meanwhile, or that starts later, never
// hears of the message; it reads the blocks under way when it (re)reads
// the shares (readBlocks), which also closes a blocked user's streams it
// still holds.
func (b *Backend) Announce(ctx context.Context, d presence.Disconnect) error {
	msg, err := json.Marshal(control{Node: b.id, User: d.User, Room: d.Room, BlockMS: d.Block.Milliseconds()})
	if err != nil {
		return fmt.Errorf("announce: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	b.stats.commands.Add(1)
	err = announceScript.Run(ctx, b.rdb, []string{blocksKey}, d.User, d.Block.Milliseconds(), presence.MaxBlock.Milliseconds(), controlChannel, string(msg)).Err()
	if err != nil {
		b.stats.errs.Add(1) // counted; the view's health is the ticker's to judge
		return fmt.Errorf("publish the disconnect to redis: %w", err)
	}
	return nil
}

// applyControl hands a disconnect announced by another node to the hub.
func (b *Backend) applyControl(payload string) {
	var msg control
	if err := json.Unmarshal([]byte(payload), &msg); err != nil || msg.Node == b.id || b.onDisconnect == nil {
		return
	}
	b.onDisconnect(presence.Disconnect{User: msg.User, Room: msg.Room, Block: time.Duration(msg.BlockMS) * time.Millisecond})
}

// readBlocks hands the blocks under way to the hub, each for what is left
// of it by Redis's clock, so that a node that missed their messages (it
// started later, or its subscription broke) refuses those users too, and
// closes their streams. The resyncer calls it after each full read.
func (b *Backend) readBlocks(ctx context.Context) {
	if b.onDisconnect == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	b.stats.commands.Add(1)
	res, err := blocksScript.Run(ctx, b.rdb, []string{blocksKey}, presence.MaxBlocked).StringSlice()
	if err != nil {
		b.stats.errs.Add(1) // the next resync reads them again
		return
	}
	for i := 0; i+1 < len(res); i += 2 {
		left, err := strconv.ParseInt(res[i+1], 10, 64)
		if err != nil || left <= 0 {
			continue
		}
		b.onDisconnect(presence.Disconnect{User: res[i], Block: time.Duration(left) * time.Millisecond})
	}
}
