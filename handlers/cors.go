package handlers

import (
	"net/http"
	"strings"
)

// CORSOptions say which other origins' pages may use the streams and the
// API (the widget on another site).
type CORSOptions struct {
	// AllowedOrigins are origins such as "https://docs.example.com"; "*"
	// allows every origin.
	AllowedOrigins []string
}

// corsMiddleware answers cross-origin requests to the streams and the
// API: an allowed origin gets Access-Control-Allow-Origin (and a preflight,
// which a reconnecting EventSource may send for its Last-Event-ID, gets its
// answer); any other origin gets 403 with a JSON error before the request
// reaches a handler, so that a refused page opens no stream and counts for
// no one. Requests without an Origin, or from the service's own origin,
// pass untouched. Credentials are not allowed: a widget passes its visitor
// id as ?visitor= instead of a cookie, which other sites' pages would not
// send anyway.
func corsMiddleware(opts CORSOptions) func(http.Handler) http.Handler {
	any := false
	allowed := make(map[string]bool, len(opts.AllowedOrigins))
	for _, o := range opts.AllowedOrigins {
		if o == "*" {
			any = true
		}
		allowed[strings.TrimSuffix(o, "/")] = true
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			origin := r.Header.Get("Origin")
			if origin == "" || sameOrigin(origin, r) {
				next.ServeHTTP(w, r)
				return
			}
			h := w.Header()
			h.Add("Vary", "Origin")
			// Also on a refusal: the page may read it (not the service), so
			// that the widget says why and backs off instead of retrying.
			h.Set("Access-Control-Allow-Origin", origin)
			if !any && !allowed[origin] {
				writeError(w, http.StatusForbidden, "origin "+origin+" may not use this service (see --allowed-origins)")
				return
			}
			if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
				h.Set("Access-Control-Allow-Methods", "GET")
				h.Set("Access-Control-Allow-Headers", "Last-Event-ID, Cache-Control, Authorization")
				h.Set("Access-Control-Max-Age", "600")
				w.WriteHeader(http.StatusNoContent)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// sameOrigin reports whether origin is the service's own, as the request
// reached it.
func sameOrigin(origin string, r *http.Request) bool {
	scheme := "http://"
	if r.TLS != nil {
		scheme = "https://"
	}
	return origin == scheme+r.Host
}

// handleOptions answers an OPTIONS request that is not a cross-origin
// preflight (the middleware answers those).
func handleOptions() http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Allow", "GET, OPTIONS")
		w.WriteHeader(http.StatusNoContent)
	}
}
