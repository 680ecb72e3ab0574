package handlers

import (
	"net/http"
	"slices"
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
// send anyway. Refusals are counted in m under reason "origin".
func corsMiddleware(opts CORSOptions, m *Metrics) func(http.Handler) http.Handler {
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
				m.refused.WithLabelValues(reasonOrigin).Inc()
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

// crossSiteGuard refuses, when origins are restricted (AllowedOrigins is
// not "*"), a stream request that a page of another site made without CORS:
// an <iframe>, <img> or <script> of /events, or a link followed to it,
// carries no Origin, so corsMiddleware cannot tell it from curl, and the
// page of a refused origin would hold a stream and be counted. Browsers say
// who asks in Sec-Fetch-Site and how in Sec-Fetch-Mode: a request that is
// cross-site or same-site and not in mode cors gets 403 with a JSON error,
// counted in m under reason "origin". A CORS request (EventSource, fetch)
// carries an Origin that corsMiddleware has already checked. Requests
// without these headers (curl, older browsers) and same-origin ones, or
// ones the user made (typing the URL: "none"), pass.
func crossSiteGuard(opts CORSOptions, m *Metrics) func(http.Handler) http.Handler {
	if slices.Contains(opts.AllowedOrigins, "*") {
		return func(next http.Handler) http.Handler { return next }
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch r.Header.Get("Sec-Fetch-Site") {
			case "cross-site", "same-site":
				if r.Header.Get("Sec-Fetch-Mode") != "cors" {
					m.refused.WithLabelValues(reasonOrigin).Inc()
					writeError(w, http.StatusForbidden, "a page of another site may open a stream only with EventSource or fetch from an allowed origin (see --allowed-origins), not as a frame, a link or an embed")
					return
				}
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
		w.Header().Set("Allow", "GET, HEAD, OPTIONS")
		w.WriteHeader(http.StatusNoContent)
	}
}
