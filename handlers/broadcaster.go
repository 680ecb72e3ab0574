package handlers

import (
	"context"
	"net"
	"strconv"
	"time"

	"github.com/r3labs/sse/v2"

	"github.com/presence/presence/presence"
)

// streamBuffer is the r3labs per-room event queue. Publishes come at most
// once per window plus heartbeats, so a short queue is plenty, and a room
// costs little memory even with thousands of rooms.
const streamBuffer = 16

// subscriberQueue is the fixed size of r3labs's per-subscriber channel: its
// fan-out blocks on a subscriber whose channel is full. The write deadline is
// validated against it (see MaxWriteTimeout).
const subscriberQueue = 64

// MaxWriteTimeout is the longest write deadline that keeps a stalled client
// from ever blocking r3labs's fan-out for its room: within it, a room sends
// fewer events than the subscriber channel holds, with a margin.
func MaxWriteTimeout(window, heartbeat time.Duration) time.Duration {
	perSecond := float64(time.Second)/float64(window) + float64(time.Second)/float64(heartbeat)
	return time.Duration(float64(subscriberQueue*3/4) / perSecond * float64(time.Second))
}

// Broadcaster is the stream transport: the presence Hub plus an r3labs/sse
// server with one stream per room. It implements presence.Notifier.
//
// r3labs's fan-out blocks on a full subscriber channel, replays history and
// leaks goroutines when a stream with subscribers is removed (see
// shared/docs/r3labs-sse-v2.md). The Broadcaster keeps replay off, publishes
// at most once per window per room, removes a room's stream only after its
// last subscriber has left, and ends streams itself on shutdown.
type Broadcaster struct {
	srv       *sse.Server
	hub       *presence.Hub
	metrics   *Metrics
	heartbeat time.Duration

	closing context.Context // done when streams must end
	close   context.CancelFunc
}

// NewBroadcaster builds the hub over backend and the r3labs server under it.
func NewBroadcaster(backend presence.Backend, opts presence.HubOptions, heartbeat time.Duration, m *Metrics) (*Broadcaster, error) {
	srv := sse.New()
	srv.AutoReplay = false // history would grow without bound and replay to newcomers
	srv.AutoStream = false // streams are made and removed by the hub's room lifecycle
	srv.BufferSize = streamBuffer
	b := &Broadcaster{srv: srv, metrics: m, heartbeat: heartbeat}
	hub, err := presence.NewHub(backend, b, opts)
	if err != nil {
		return nil, err
	}
	b.hub = hub
	b.closing, b.close = context.WithCancel(context.Background())
	return b, nil
}

// Hub returns the presence hub the broadcaster serves.
func (b *Broadcaster) Hub() *presence.Hub { return b.hub }

// RoomOpened implements presence.Notifier.
func (b *Broadcaster) RoomOpened(room string) { b.srv.CreateStream(room) }

// RoomClosed implements presence.Notifier. The hub calls it only after the
// room's last stream handler has returned, so no subscriber is left on the
// r3labs stream (removing one with subscribers would leak them).
func (b *Broadcaster) RoomClosed(room string) { b.srv.RemoveStream(room) }

// Publish implements presence.Notifier. Every publish is a fresh Event:
// r3labs may rewrite an event it is given. Its id is the room's publish
// sequence, which the stream writers report back to time the fan-out.
func (b *Broadcaster) Publish(room string, count int, seq uint64) {
	b.metrics.events.Inc()
	b.srv.Publish(room, &sse.Event{
		ID:    []byte(strconv.FormatUint(seq, 10)),
		Event: []byte("user count"),
		Data:  []byte(strconv.Itoa(count)),
	})
}

// Run sends a heartbeat comment to every room until ctx is done.
func (b *Broadcaster) Run(ctx context.Context) {
	t := time.NewTicker(b.heartbeat)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			for _, room := range b.hub.RoomNames() {
				b.srv.Publish(room, &sse.Event{Comment: []byte("hb")})
			}
		}
	}
}

// BaseContext is for http.Server.BaseContext: request contexts derived from
// it end when Shutdown starts, and with them every open stream. (One shared
// parent instead of a callback per stream keeps each stream smaller.)
func (b *Broadcaster) BaseContext(net.Listener) context.Context { return b.closing }

// Ready reports whether the broadcaster takes new streams.
func (b *Broadcaster) Ready() bool { return b.closing.Err() == nil }

// Shutdown refuses new streams, ends the open ones so that their clients
// reconnect elsewhere, and waits for their handlers to return or ctx to end.
func (b *Broadcaster) Shutdown(ctx context.Context) error {
	drained := b.hub.Close()
	b.close()
	select {
	case <-drained:
		b.srv.Close()
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
