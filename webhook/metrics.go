package webhook

import (
	"fmt"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the notifier's counters, registered on the service's
// registry when there is one.
type metrics struct {
	sent, failed, retried, dropped prometheus.Counter
	queued                         atomic.Int64 // events in the queue, written by the owner
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: "presence_webhook_" + name, Help: help})
	}
	m := &metrics{
		sent:    counter("events_sent_total", "Webhook events delivered (answered 2xx)."),
		failed:  counter("requests_failed_total", "Webhook requests that failed: refused, timed out, or answered other than 2xx."),
		retried: counter("requests_retried_total", "Webhook requests that were tries again of a failed batch."),
		dropped: counter("events_dropped_total", "Webhook events dropped, oldest first, because the queue was full."),
	}
	if reg == nil {
		return m, nil
	}
	length := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "presence_webhook_queue_length", Help: "Webhook events waiting for delivery."},
		func() float64 { return float64(m.queued.Load()) })
	for _, c := range []prometheus.Collector{m.sent, m.failed, m.retried, m.dropped, length} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("webhook metrics: %w", err)
		}
	}
	return m, nil
}
