package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/presence/presence/presence"
	"github.com/presence/presence/redis"
	"github.com/presence/presence/webhook"
)

// backend is where counts live: this process's memory, or Redis shared
// with other nodes. check tries Redis once at start and fails only if Redis
// refuses the node (a configuration error); start runs what the backend
// needs in the background (telling the hub of other nodes' changes and
// disconnects) and returns a stop that removes this node's
// shares; ready is nil once the node knows the whole cluster, and says why
// not otherwise, in a few words fit for the public. All are no-ops in
// memory.
type backend struct {
	presence.Backend
	check func(ctx context.Context) error
	start func(onChange func(room string), onDisconnect func(presence.Disconnect)) (stop func())
	ready func() error
	// arbiter decides which node tells each webhook transition; nil in
	// memory, where this node tells all.
	arbiter webhook.Arbiter
}

// startCheckTimeout bounds the first try of Redis at start: past it, Redis
// counts as unreachable, which does not stop the node.
const startCheckTimeout = 3 * time.Second

// newBackend picks the backend from the settings and registers its metrics.
func newBackend(cfg config, reg prometheus.Registerer, log *slog.Logger) (backend, error) {
	if cfg.RedisURL == "" {
		return backend{
			Backend: presence.NewMemory(),
			check:   func(context.Context) error { return nil },
			start:   func(func(string), func(presence.Disconnect)) func() { return func() {} },
			ready:   func() error { return nil },
		}, nil
	}
	rb, err := redis.New(redis.Options{
		URL:         cfg.RedisURL,
		NodeID:      cfg.NodeID,
		NodeTimeout: cfg.NodeTimeout,
		Logger:      log,
		Metrics:     reg,
	})
	if err != nil {
		return backend{}, fmt.Errorf("--redis-url (%s) / --node-id / --node-timeout: %w", envName("redis-url"), err)
	}
	log.Info("sharing counts through redis", "redis", rb.URL(), "node", rb.NodeID(), "node_timeout", cfg.NodeTimeout.String())
	check := func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, startCheckTimeout)
		defer cancel()
		err := rb.Check(ctx)
		if err == nil {
			return nil
		}
		// The node stops: undo what the check wrote and close the client.
		cctx, ccancel := context.WithTimeout(context.Background(), time.Second)
		defer ccancel()
		_ = rb.Close(cctx) // may be refused too; the registration expires
		return fmt.Errorf("--redis-url (%s): %w", envName("redis-url"), err)
	}
	start := func(onChange func(string), onDisconnect func(presence.Disconnect)) func() {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			rb.Run(ctx, onChange, onDisconnect)
		}()
		return func() {
			cancel()
			<-done
			cctx, ccancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer ccancel()
			if err := rb.Close(cctx); err != nil {
				log.Warn("could not remove this node's shares from redis; they expire on their own", "err", err)
			}
		}
	}
	return backend{Backend: rb, check: check, start: start, ready: rb.Ready, arbiter: rb}, nil
}
