// Package handlers is the HTTP side of presence: the router, the SSE
// streams, the JSON API, health, metrics and the page.
package handlers

import (
	"io/fs"
	"log/slog"
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// NewRouter lists every route of the service. Every GET route answers
// HEAD too, as GET would but without a body (a HEAD of a stream opens no
// stream); a method a path does not take gets 405 with an Allow header.
// Options it refuses are *option.Errors, joined (see Options.validate).
func NewRouter(b *Broadcaster, opts Options, m *Metrics, gatherer prometheus.Gatherer, static fs.FS, log *slog.Logger) (http.Handler, error) {
	opts, err := opts.validate()
	if err != nil {
		return nil, err
	}
	key := newAPIKey(opts.APIKey)
	r := chi.NewRouter()
	r.Use(guardConns(b, opts.Stream.proxies, m)) // connections that reset streams like no browser
	r.Use(limitHeaders(opts.MaxHeaderBytes))
	r.NotFound(func(w http.ResponseWriter, _ *http.Request) {
		writeError(w, http.StatusNotFound, "no such path")
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("Allow", allowedMethods(r, req))
		writeError(w, http.StatusMethodNotAllowed, "method not allowed")
	})

	// Streams and the API, for this site's pages and the allowed others'.
	r.Group(func(r chi.Router) {
		r.Use(corsMiddleware(opts.CORS, m))
		stream := handleStream(b, opts.Stream, m, log)
		streams := r.With(crossSiteGuard(opts.CORS, m)) // no frames of other sites
		getHead(streams, "/events", stream)
		getHead(streams, "/rooms/{room}/events", stream)
		getHead(streams, "/watch", handleWatch(b, opts.Stream, m, log)) // rooms followed, counted in none
		r.Options("/events", handleOptions())
		r.Options("/rooms/{room}/events", handleOptions())
		r.Options("/watch", handleOptions())
		getHead(r, "/api/rooms", handleRooms(b.hub, opts.RoomsLimit, opts.Stream.Identity, key))
		getHead(r, "/api/rooms/{room}", handleRoom(b.hub, opts.Stream.Identity, key))
		// Preflights of other sites' pages that send Authorization: Bearer.
		r.Options("/api/rooms", handleOptions())
		r.Options("/api/rooms/{room}", handleOptions())
	})

	// The server API, for the sites' backends: behind the API key, and
	// with no CORS, since no page should hold the key (serverapi.go).
	r.Group(func(r chi.Router) {
		r.Use(key.require)
		getHead(r, "/api/rooms/{room}/members", handleMembers(b.hub))
		r.Post("/api/users/{id}/disconnect", handleUserDisconnect(b.hub))
		r.Post("/api/rooms/{room}/disconnect", handleRoomDisconnect(b.hub))
		getHead(r, "/api/openapi.json", handleOpenAPI()) // every route above and below, checked by a test
	})

	getHead(r, "/healthz", handleHealthz())
	getHead(r, "/readyz", handleReadyz(b.Ready, opts.Ready, b.hub.Health))
	getHead(r, "/metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{}))

	getHead(r, "/", handleDemo(static))
	getHead(r, "/widget.js", handleScript(static, "widget"))
	return r, nil
}

// getHead routes GET and HEAD of pattern to h. net/http drops what a
// handler writes to a HEAD; a handler that must not act on a HEAD (the
// stream) checks the method itself.
func getHead(r chi.Router, pattern string, h http.Handler) {
	r.Method(http.MethodGet, pattern, h)
	r.Method(http.MethodHead, pattern, h)
}

// allowedMethods lists, for the Allow header of a 405, the methods that
// req's path takes.
func allowedMethods(mux *chi.Mux, req *http.Request) string {
	path := req.URL.RawPath // as chi routes
	if path == "" {
		path = req.URL.Path
	}
	var allow []string
	rctx := chi.NewRouteContext()
	for _, method := range []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions} {
		rctx.Reset()
		if mux.Match(rctx, method, path) {
			allow = append(allow, method)
		}
	}
	return strings.Join(allow, ", ")
}
