// Command presence streams live user counts to browsers over Server-Sent
// Events: every open page shows, at once and exactly, how many are here.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/presence/presence/auth"
	"github.com/presence/presence/handlers"
	"github.com/presence/presence/presence"
	"github.com/presence/presence/static"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "presence:", err)
		os.Exit(1)
	}
}

// run is the whole program, with its inputs passed in so that tests can run
// it in parallel: it serves until ctx is done or a signal comes, then drains.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := parseConfig(args, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := newLogger(cfg, stderr)

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	store, err := newBackend(cfg, reg, log)
	if err != nil {
		return err
	}
	hooks, err := newWebhooks(cfg, reg, log, store.arbiter)
	if err != nil {
		return err
	}
	hub, err := presence.NewHub(store.Backend, withWebhooks(cfg.hubOptions(), hooks))
	if err != nil {
		return flagErrors(err)
	}
	metrics := handlers.NewMetrics(reg, hub)
	tokens, err := auth.NewVerifier(auth.Options{Secret: []byte(cfg.TokenSecret), PublicKeyFile: cfg.TokenPublicKey, Leeway: 5 * time.Second})
	if err != nil {
		return fmt.Errorf("--token-secret (%s) / --token-public-key (%s): %w", envName("token-secret"), envName("token-public-key"), err)
	}
	b, err := handlers.NewBroadcaster(hub, cfg.Heartbeat, metrics)
	if err != nil {
		return flagErrors(err)
	}
	router, err := handlers.NewRouter(b, cfg.routerOptions(tokens, store.ready), metrics, reg, static.FS, log)
	if err != nil {
		return flagErrors(err)
	}
	// Last of the checks, so that a node that fails one of the others has
	// not shown itself to Redis: a refusal stops the node here; an
	// unreachable Redis leaves it running, not ready, and logged.
	if err := store.check(ctx); err != nil {
		return err
	}
	stopBackend := store.start(hub.Changed, func(d presence.Disconnect) { hub.Disconnected(d) })
	defer stopBackend() // after the streams have left: then this node's shares go
	// Before the backend stops: a last try to tell of those who left.
	defer startWebhooks(hooks, log)()

	ln, err := listen(ctx, cfg)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	srv := &http.Server{
		Handler:           router,
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		MaxHeaderBytes:    handlers.ServerMaxHeaderBytes(cfg.MaxHeaderBytes), // the router's limit is exact
		IdleTimeout:       cfg.IdleTimeout,
		// No WriteTimeout: it would cut every stream. Streams set a deadline
		// on each write instead.
		// Over HTTP/2 a stream's deadline resets the stream, which needs the
		// connection to take a frame: a connection that takes nothing for
		// twice the write timeout is closed, with all its streams (twice, so
		// that their own deadlines pass first and they count as evicted).
		HTTP2:       &http.HTTP2Config{WriteByteTimeout: 2 * cfg.WriteTimeout},
		ErrorLog:    slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		BaseContext: b.BaseContext, // streams end when the broadcaster shuts down
		// Per-connection state: a connection that resets streams faster
		// than any browser is refused and closed.
		ConnContext: handlers.ConnContext,
	}

	heartbeatCtx, stopHeartbeat := context.WithCancel(context.Background())
	heartbeatDone := make(chan struct{})
	go func() {
		defer close(heartbeatDone)
		b.Run(heartbeatCtx)
	}()
	defer func() { stopHeartbeat(); <-heartbeatDone }()

	memTick := time.NewTicker(memoryCheckEvery)
	defer memTick.Stop()
	memDone := make(chan struct{})
	go func() {
		defer close(memDone)
		releaseMemoryWhenIdle(heartbeatCtx, func() (int, int) { return hub.Stats().Streams, hub.PeakStreams() }, memTick.C, releaseMemory)
	}()
	defer func() { stopHeartbeat(); <-memDone }()

	serveErr := make(chan error, 1)
	scheme := "http"
	if cfg.TLSCert != "" {
		scheme = "https" // and HTTP/2, which net/http offers over TLS
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cfg.tlsCert}}
		go func() { serveErr <- srv.ServeTLS(ln, "", "") }()
	} else {
		go func() { serveErr <- srv.Serve(ln) }()
	}
	log.Info("listening", "addr", ln.Addr().String(), "scheme", scheme, "max_streams", cfg.MaxStreams)
	fmt.Fprintf(stdout, "presence listening on %s://%s\n", scheme, ln.Addr())

	select {
	case err := <-serveErr:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}

	log.Info("shutting down", "drain", cfg.Drain.String(), "streams", hub.Stats().Streams)
	// A fresh context: the one we got is already cancelled.
	drainCtx, cancel := context.WithTimeout(context.Background(), cfg.Drain)
	defer cancel()
	if err := b.Shutdown(drainCtx); err != nil {
		log.Warn("streams did not end within the drain time", "open", hub.Stats().Streams)
	}
	if err := srv.Shutdown(drainCtx); err != nil {
		log.Warn("connections did not close within the drain time; closing them", "err", err)
		_ = srv.Close()
	}
	if err := <-serveErr; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	log.Info("stopped")
	return nil
}

// newLogger returns the service's logger: text or JSON on w.
func newLogger(cfg config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// listen opens the TCP listener before serving, so that ":0" works and a
// port in use is reported at once.
func listen(ctx context.Context, cfg config) (net.Listener, error) {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", cfg.Addr)
	if err != nil {
		return nil, err
	}
	return &tunedListener{Listener: ln, userTimeout: cfg.TCPUserTimeout, sendBuffer: cfg.SendBuffer}, nil
}
