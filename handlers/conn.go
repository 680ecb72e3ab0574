package handlers

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"
)

// A client connection that ends streams faster than any browser would is
// refused further requests (429, Connection: close: GOAWAY over HTTP/2)
// and closed a second later. Over HTTP/2 a client can open a
// stream and reset it in the same packet (HEADERS then RST_STREAM), a
// hundred thousand times a second on one connection; each costs the
// server a handler, and each stream that got as far as a join a join and a
// leave seen by the whole room.
//
// A browser ends a stream early when a page is closed, reloaded or left
// within a second of opening it. All tabs of one browser share one HTTP/2
// connection to a site, but even a person reloading 20 tabs at once, or a
// page with a few widgets reloaded every second, ends far fewer than 100
// streams in 10 s; a tool doing the above ends 100 in well under a
// millisecond.
const (
	// earlyEnd: a stream the client ends sooner than this after its
	// request came (or whose request was cancelled before it was served)
	// ended early.
	earlyEnd = time.Second
	// maxEarlyEnds early ends in one earlyWindow mark a connection as not
	// a browser's.
	maxEarlyEnds = 100
	earlyWindow  = 10 * time.Second
	// hardClose is how long a refused connection may stay open after
	// its GOAWAY: an HTTP/2 connection closes gracefully only once its
	// open streams end, and a client that keeps one open could go on
	// sending frames for the server to read and drop. net/http itself
	// waits a second after a GOAWAY (for it to reach the client) before it
	// closes.
	hardClose = time.Second
)

// connState is what the service keeps per client connection: how many
// streams it ended early lately, and whether it is refused. One per
// connection, dropped with it.
type connState struct {
	conn    net.Conn
	mu      sync.Mutex
	start   time.Time // of the current window
	early   int       // early ends in the current window
	refused bool      // for good: the connection is being closed
}

// connKey is the context key of a request's *connState.
type connKey struct{}

// ConnContext is for http.Server.ConnContext: it gives each client
// connection the state that tells one that resets streams faster than any
// browser from one that does not.
func ConnContext(ctx context.Context, c net.Conn) context.Context {
	return context.WithValue(ctx, connKey{}, &connState{conn: c})
}

// connOf returns the state of r's connection, nil if the server keeps
// none (no ConnContext): then nothing is counted or refused.
func connOf(r *http.Request) *connState {
	c, _ := r.Context().Value(connKey{}).(*connState)
	return c
}

// endedEarly counts a stream of the connection that its client ended
// early, and reports whether the connection is now refused.
func (c *connState) endedEarly(now time.Time) bool {
	if c == nil {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if now.Sub(c.start) >= earlyWindow {
		c.start, c.early = now, 0
	}
	c.early++
	if c.early > maxEarlyEnds && !c.refused {
		c.refused = true
		// Closing a closed connection does nothing: no need to stop
		// the timer, which ends within hardClose anyway.
		time.AfterFunc(hardClose, func() { c.conn.Close() })
	}
	return c.refused
}

// peerTimedOut reports whether the kernel dropped the connection because
// its peer took no bytes for TCP_USER_TIMEOUT (a client that stopped
// reading, or vanished): the listener's connections tell (PeerTimedOut).
func (c *connState) peerTimedOut() bool {
	if c == nil {
		return false
	}
	return peerTimedOut(c.conn)
}

// peerTimedOut reports whether the kernel dropped nc because its peer took
// no bytes for TCP_USER_TIMEOUT: the listener's connections tell
// (PeerTimedOut).
func peerTimedOut(nc net.Conn) bool {
	if tc, ok := nc.(*tls.Conn); ok {
		nc = tc.NetConn()
	}
	p, ok := nc.(interface{ PeerTimedOut() bool })
	return ok && p.PeerTimedOut()
}

// isRefused reports whether the connection gets no more streams.
func (c *connState) isRefused() bool {
	if c == nil {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.refused
}

// guardedConn returns the state of r's connection to count its early ends
// by, or nil if there is none or the peer is a trusted proxy: a proxy's
// connection carries many people, and the proxy faces their resets itself.
func guardedConn(r *http.Request, proxies []netip.Prefix) *connState {
	if len(proxies) > 0 {
		if peer, ok := parseNode(r.RemoteAddr); ok && trusted(proxies, peer) {
			return nil
		}
	}
	return connOf(r)
}

// guardConns is the middleware in front of every route that refuses every
// request of a refused connection, and on a guarded connection serves no
// request whose client cancelled it already (counting it as an early end),
// whatever the route: a flood of HEADERS and RST_STREAM costs handlers on
// any of them.
func guardConns(b *Broadcaster, proxies []netip.Prefix, m *Metrics) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			conn := guardedConn(r, proxies)
			if conn.isRefused() {
				refuseConn(w)
				m.refused.WithLabelValues(refusedResets).Inc()
				return
			}
			if conn != nil && r.Context().Err() != nil && b.closing.Err() == nil {
				cancelledEarly(w, conn, m)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// cancelledEarly counts a request its client cancelled before it was
// served as an early end of its connection and, if that makes the
// connection refused, answers so that the connection closes.
func cancelledEarly(w http.ResponseWriter, conn *connState, m *Metrics) {
	if conn.endedEarly(time.Now()) {
		refuseConn(w) // no one reads it, but it makes net/http send GOAWAY
		m.refused.WithLabelValues(refusedResets).Inc()
	}
}

// refuseConn answers a stream request of a refused connection: 429 and
// Connection: close, which makes net/http close an HTTP/1.1 connection
// after the answer and send GOAWAY on an HTTP/2 one, closing it once its
// open streams end (h2_bundle.go: writeChunk, startGracefulShutdown).
func refuseConn(w http.ResponseWriter) {
	w.Header().Set("Connection", "close")
	w.Header().Set("Retry-After", retryAfterSeconds)
	writeError(w, http.StatusTooManyRequests, "this connection ends streams faster than a browser does; open a new one")
}
