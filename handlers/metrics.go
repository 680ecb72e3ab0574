package handlers

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/presence/presence/presence"
)

// Disconnect reasons, the values of the reason label.
const (
	reasonClient   = "client"   // the client went away
	reasonEvicted  = "evicted"  // a write stalled past the write deadline, or the kernel cut a peer that took nothing (TCP_USER_TIMEOUT)
	reasonShutdown = "shutdown" // the server is draining
	reasonExpired  = "expired"  // a signed-in stream's token ended (see expiry.go)
)

// Refusal reasons of this package's own, values of presence_refused_total's
// reason label besides those writeJoinError gives.
const (
	refusedPerIP      = "per_ip"       // the client address holds --max-streams-per-ip
	refusedWatchPerIP = "watch_per_ip" // its watches made --max-watch-rooms-per-ip rooms
	refusedResets     = "resets"       // the connection ends streams faster than a browser
	refusedBlocked    = "blocked"      // a user blocked by the server API (POST /api/users/{id}/disconnect)
)

// reasonOrigin is the refusal reason of a request from a page of an origin
// not allowed (see corsMiddleware and crossSiteGuard).
const reasonOrigin = "origin"

// Metrics are the service's Prometheus collectors. Build them with
// NewMetrics on a registry of the caller's, so tests get their own.
type Metrics struct {
	connects   prometheus.Counter
	disconnect *prometheus.CounterVec
	refused    *prometheus.CounterVec
	deliveries prometheus.Counter
}

// NewMetrics registers the collectors on reg; hub feeds the gauges and
// the count of publishes.
func NewMetrics(reg prometheus.Registerer, hub *presence.Hub) *Metrics {
	m := &Metrics{
		connects: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "presence_connects_total", Help: "Streams opened.",
		}),
		disconnect: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "presence_disconnects_total",
			Help: "Streams closed, by reason: client (went away), evicted (a write stalled past the deadline, or the peer took nothing for the TCP user timeout), shutdown, expired (the token ended), disconnected (by the server API).",
		}, []string{"reason"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "presence_refused_total",
			Help: "Streams refused, by reason: stream_limit, room_limit, per_ip (--max-streams-per-ip), resets (a request, of any route, on a connection that ends streams faster than a browser), shutting_down, unauthorized, blocked (a user blocked by the server API), origin (a page of an origin not allowed, on a stream or the API, or a cross-site stream request that is not CORS).",
		}, []string{"reason"}),
		deliveries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "presence_deliveries_total", Help: "Count events written to streams.",
		}),
	}
	for _, r := range []string{reasonClient, reasonEvicted, reasonShutdown, reasonExpired, reasonDisconnected} {
		m.disconnect.WithLabelValues(r)
	}
	for _, r := range []string{"stream_limit", "room_limit", refusedPerIP, refusedWatchPerIP, refusedResets, "shutting_down", refusedBlocked, reasonOrigin} {
		m.refused.WithLabelValues(r)
	}
	reg.MustRegister(m.connects, m.disconnect, m.refused, m.deliveries,
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "presence_events_published_total", Help: "Count events published to rooms.",
		}, func() float64 { return float64(hub.Published()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "presence_streams_open", Help: "Streams open on this node.",
		}, func() float64 { return float64(hub.Stats().Streams) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "presence_rooms", Help: "Rooms with streams on this node.",
		}, func() float64 { s := hub.Stats(); return float64(s.Rooms - s.Watched) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "presence_watched_rooms", Help: "Rooms that only watchers follow on this node (GET /watch, ?watch=): bounded by --max-rooms apart from the rooms with streams.",
		}, func() float64 { return float64(hub.Stats().Watched) }),
	)
	return m
}
