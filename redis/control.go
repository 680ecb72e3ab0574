package redis

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/presence/presence/presence"
)

// controlChannel carries the server API's disconnects from the node that
// took the call to every other node, on the subscription that carries the
// shares (see subscribeLoop).
const controlChannel = "presence:control"

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

// Announce implements presence.Announcer: one PUBLISH, which every node
// subscribed at that moment gets within milliseconds. Pub/sub delivers at
// most once: a node whose subscription is broken meanwhile, or that starts
// later, never hears of it (a block included).
func (b *Backend) Announce(ctx context.Context, d presence.Disconnect) error {
	msg, err := json.Marshal(control{Node: b.id, User: d.User, Room: d.Room, BlockMS: d.Block.Milliseconds()})
	if err != nil {
		return fmt.Errorf("announce: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	b.stats.commands.Add(1)
	if err := b.rdb.Publish(ctx, controlChannel, msg).Err(); err != nil {
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
