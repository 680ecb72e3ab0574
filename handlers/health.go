package handlers

import "net/http"

// handleHealthz serves GET /healthz: the process is alive.
func handleHealthz() http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	}
}

// handleReadyz serves GET /readyz: 200 while the node takes traffic, 503
// once it drains, so that a load balancer sends new clients elsewhere, and
// 503 before the node's counts are worth serving (started says why: a node
// that has never read the other nodes' shares would show only its own
// clients as if they were everyone).
//
// A node whose shared view is degraded later (health returns an error:
// Redis is unreachable) stays ready and says so: it still serves every
// stream, with its own share exact and the other nodes' as last known,
// whereas taking every node out of rotation during a Redis outage would
// turn stale counts into no service at all.
//
// The body gives the public a short reason only (started and health say
// it in a few words); what went wrong, with addresses, is in the log.
func handleReadyz(ready func() bool, started, health func() error) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		if !ready() {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "shutting down"})
			return
		}
		if started != nil {
			if err := started(); err != nil {
				writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready", "reason": err.Error()})
				return
			}
		}
		if err := health(); err != nil {
			writeJSON(w, http.StatusOK, map[string]string{"status": "degraded", "reason": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	}
}
