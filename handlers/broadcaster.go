package handlers

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"sync"
	"time"

	"github.com/presence/presence/internal/option"
	"github.com/presence/presence/presence"
)

// Broadcaster is the stream side of the service: it carries the rooms'
// updates, which the presence Hub hands out, to the streams, and sends
// the heartbeats. See follow.go for one stream's loop.
type Broadcaster struct {
	hub       *presence.Hub
	metrics   *Metrics
	heartbeat time.Duration
	// Buffers (*[]byte) in which a stream frames an update's events
	// before its one write: a few per CPU, rather than one per stream.
	frames sync.Pool

	closing context.Context // done when streams must end
	close   context.CancelFunc

	// The rooms' feeds of detached streams (feed.go), by room name, and
	// whether the broadcaster takes no more of them (shutting down).
	feedsMu   sync.Mutex
	feeds     map[string]*feed
	alone     map[*detached]struct{} // detached streams of GET /watch, in no feed
	feedsShut bool
	streams   sync.WaitGroup // detached streams not yet finished
	wakes     wakeQueue      // detached streams whose watch has news
	procs     int            // GOMAXPROCS at start: the most goroutines a fan-out or the wakes use
}

// NewBroadcaster serves hub's rooms to streams, with a heartbeat on every
// stream each heartbeat interval.
func NewBroadcaster(hub *presence.Hub, heartbeat time.Duration, m *Metrics) (*Broadcaster, error) {
	if hub == nil || m == nil {
		return nil, errors.New("handlers: a hub and metrics are required")
	}
	if heartbeat <= 0 {
		return nil, &option.Error{Option: "heartbeat", Problem: fmt.Sprintf("must be positive, got %s", heartbeat)}
	}
	b := &Broadcaster{hub: hub, metrics: m, heartbeat: heartbeat}
	b.frames.New = func() any { return new([]byte) }
	b.feeds = make(map[string]*feed)
	b.alone = make(map[*detached]struct{})
	b.procs = max(1, runtime.GOMAXPROCS(0))
	b.closing, b.close = context.WithCancel(context.Background())
	return b, nil
}

// Run sends a heartbeat to every room until ctx is done.
func (b *Broadcaster) Run(ctx context.Context) {
	t := time.NewTicker(b.heartbeat)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			b.hub.Heartbeat()
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
	b.cutDetached()
	select {
	case <-drained:
		b.streams.Wait() // past their leave, a few instructions each
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
