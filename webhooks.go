package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/presence/presence/presence"
	"github.com/presence/presence/webhook"
)

// webhookDrain bounds the last try, on shutdown, to deliver the webhooks of
// the people who just left.
const webhookDrain = 3 * time.Second

// newWebhooks builds the notifier from the settings, or returns nil
// without --webhook-url. arbiter is the shared store's, nil for one node.
func newWebhooks(cfg config, reg prometheus.Registerer, log *slog.Logger, arbiter webhook.Arbiter) (*webhook.Notifier, error) {
	if cfg.WebhookURL == "" {
		return nil, nil
	}
	// Someone who comes and goes within the grace (or a window, with no
	// grace) is never mentioned: the streams never count them either.
	settle := cfg.Grace
	if settle == 0 {
		settle = cfg.Window
	}
	n, err := webhook.New(webhook.Options{
		URL:     cfg.WebhookURL,
		Secret:  cfg.WebhookSecret,
		Rooms:   splitList(cfg.WebhookRooms, nil),
		Queue:   cfg.WebhookQueue,
		Settle:  settle,
		Arbiter: arbiter,
		Metrics: reg,
		Logger:  log,
	})
	if err != nil {
		return nil, flagErrors(err)
	}
	log.Info("webhooks on", "rooms", cfg.WebhookRooms, "queue", cfg.WebhookQueue, "settle", settle.String(), "signed", cfg.WebhookSecret != "")
	if cfg.WebhookSecret == "" {
		log.Warn("webhooks are not signed: without --webhook-secret a receiver cannot tell them from forgeries")
	}
	return n, nil
}

// startWebhooks runs n, if any, until the returned stop, which then tries
// for a little while to deliver what is left: call it after the streams
// have left, and before the backend stops.
func startWebhooks(n *webhook.Notifier, log *slog.Logger) (stop func()) {
	if n == nil {
		return func() {}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		n.Run(ctx)
	}()
	return func() {
		cancel()
		<-done
		dctx, dcancel := context.WithTimeout(context.Background(), webhookDrain)
		defer dcancel()
		if err := n.Drain(dctx); err != nil {
			log.Warn("webhooks left undelivered at shutdown", "err", err)
		}
	}
}

// withWebhooks has the hub tell n, if any, of every arrival and leave.
func withWebhooks(o presence.HubOptions, n *webhook.Notifier) presence.HubOptions {
	if n != nil {
		o.Observer = n
	}
	return o
}
