// Package handlers is the HTTP side of presence: the router, the SSE
// streams (over r3labs/sse), the JSON API, health, metrics and the page.
package handlers

import (
	"io/fs"
	"log/slog"
	"net/http"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Options is what the router needs besides its dependencies.
type Options struct {
	Stream StreamOptions
	// RoomsLimit is how many rooms GET /api/rooms lists by default.
	RoomsLimit int
	// CORS says which other sites' pages may use the streams and the API.
	CORS CORSOptions
	// Ready is nil once the node's counts are worth serving (with Redis:
	// once it has read the whole cluster), and says otherwise why not, in a
	// few words fit for the public; /readyz answers 503 meanwhile. Nil
	// means always.
	Ready func() error
}

// NewRouter lists every route of the service.
func NewRouter(b *Broadcaster, opts Options, m *Metrics, gatherer prometheus.Gatherer, static fs.FS, log *slog.Logger) http.Handler {
	r := chi.NewRouter()
	r.Use(guardConns(b, opts.Stream.TrustedProxies, m)) // connections that reset streams like no browser
	r.NotFound(func(w http.ResponseWriter, _ *http.Request) {
		writeError(w, http.StatusNotFound, "no such path")
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, _ *http.Request) {
		writeError(w, http.StatusMethodNotAllowed, "method not allowed")
	})

	// Streams and the API, for this site's pages and the allowed others'.
	r.Group(func(r chi.Router) {
		r.Use(corsMiddleware(opts.CORS))
		stream := handleStream(b, opts.Stream, m, log)
		r.Get("/events", stream)
		r.Get("/rooms/{room}/events", stream)
		r.Options("/events", handleOptions())
		r.Options("/rooms/{room}/events", handleOptions())
		r.Get("/api/rooms", handleRooms(b.hub, opts.RoomsLimit, opts.Stream.Identity))
		r.Get("/api/rooms/{room}", handleRoom(b.hub, opts.Stream.Identity))
		// Preflights of other sites' pages that send Authorization: Bearer.
		r.Options("/api/rooms", handleOptions())
		r.Options("/api/rooms/{room}", handleOptions())
	})

	r.Get("/healthz", handleHealthz())
	r.Get("/readyz", handleReadyz(b.Ready, opts.Ready, b.hub.Health))
	r.Handle("/metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{}))

	r.Get("/", handlePage(static, "index.html"))
	r.Get("/widget.js", handleScript(static, "widget.js"))
	return r
}
