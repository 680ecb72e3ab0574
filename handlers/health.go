package handlers

import "net/http"

// handleHealthz serves GET /healthz: the process is alive.
func handleHealthz() http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	}
}

// handleReadyz serves GET /readyz: 200 while the node takes traffic, 503
// once it drains, so that a load balancer sends new clients elsewhere.
//
// A node whose shared view is degraded (health returns an error: Redis is
// unreachable) stays ready and says so: it still serves every stream, with
// its own share exact and the other nodes' as last known, whereas taking
// every node out of rotation during a Redis outage would turn stale counts
// into no service at all.
func handleReadyz(ready func() bool, health func() error) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		if !ready() {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "shutting down"})
			return
		}
		if err := health(); err != nil {
			writeJSON(w, http.StatusOK, map[string]string{"status": "degraded", "reason": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	}
}
