package redis

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// counters are what a Backend counts as it goes, for Stats and metrics.
type counters struct {
	commands atomic.Uint64 // Redis commands sent
	errs     atomic.Uint64 // Redis calls that failed
	resyncs  atomic.Uint64 // full reads of the other nodes' shares
}

// Stats counts this node's Redis commands and failed calls, for metrics.
type Stats struct {
	Commands uint64 // calls to Redis
	Errors   uint64 // calls that failed
	Resyncs  uint64 // full reads of every node's shares, after a gap or trouble
}

// Stats returns the counters so far.
func (b *Backend) Stats() Stats {
	return Stats{Commands: b.stats.commands.Load(), Errors: b.stats.errs.Load(), Resyncs: b.stats.resyncs.Load()}
}

// collector is a Backend's metrics, read from its counters and its health
// when scraped.
type collector struct {
	b                                   *Backend
	commands, errors, resyncs, degraded *prometheus.Desc
}

func newCollector(b *Backend) *collector {
	desc := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc("presence_redis_"+name, help, nil, nil)
	}
	return &collector{
		b:        b,
		commands: desc("commands_total", "Redis commands sent by this node."),
		errors:   desc("errors_total", "Redis calls of this node that failed."),
		resyncs:  desc("resyncs_total", "Full reads of every node's shares, after a missed change, an outage or a restart of Redis."),
		degraded: desc("degraded", "1 while this node cannot reach Redis and serves the last known counts of the other nodes."),
	}
}

// Describe implements prometheus.Collector.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.commands
	ch <- c.errors
	ch <- c.resyncs
	ch <- c.degraded
}

// Collect implements prometheus.Collector.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	s := c.b.Stats()
	degraded := 0.0
	if c.b.Health() != nil {
		degraded = 1
	}
	ch <- prometheus.MustNewConstMetric(c.commands, prometheus.CounterValue, float64(s.Commands))
	ch <- prometheus.MustNewConstMetric(c.errors, prometheus.CounterValue, float64(s.Errors))
	ch <- prometheus.MustNewConstMetric(c.resyncs, prometheus.CounterValue, float64(s.Resyncs))
	ch <- prometheus.MustNewConstMetric(c.degraded, prometheus.GaugeValue, degraded)
}
