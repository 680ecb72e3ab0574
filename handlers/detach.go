package handlers

import (
	"bufio"
	"crypto/tls"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/presence/presence/presence"
)

// A stream over HTTP/1.1 (plain, or TLS: below) does not keep its
// request's goroutine and net/http's buffers for its whole life: once the
// handler has validated the request, joined the room and framed the first
// events, it takes the connection over (Hijack) and lets go of everything
// net/http held for it.
// What is left per stream is:
//
//   - a detached (below) and the connection;
//   - one goroutine blocked in a 1-byte Read, so that a close, a reset or
//     a peer the kernel gave up on (TCP_USER_TIMEOUT) ends the stream at
//     once; it is the only goroutine that ends a stream, so that the leave
//     and the metrics happen in one place;
//   - for a signed-in stream, the two timers of its token's expiry.
//
// The room's feed (feed.go) writes every update to its streams itself,
// with a write that never waits: a stream whose socket does not take the
// whole write is handed to a goroutine of its own (drain) that finishes it
// under the write timeout and catches up with the newest update, while the
// feed goes on with the others. So the fan-out never waits for the slowest
// stream, and a stalled stream costs a goroutine and one frame only while
// it is stalled, and is cut at the write timeout as any other.
//
// A stream that watches rooms (GET /watch, ?watch=) is woken by its watch
// (presence.WatchOptions.Woken) and written to by the wake workers
// (detach_watch.go), with the same writes.
//
// A stream over TLS (HTTP/1.1) is detached too, when its connection is
// the service's own (Conn, which main's listener gives): crypto/tls
// encrypts each write, and the Conn under it writes the records without
// waiting and keeps for the drain what the socket did not take.
//
// Streams over HTTP/2 stay on net/http's path (follow.go): they share a
// connection, and its goroutines and buffers, anyway.

// detached is one stream whose connection the service took over. It is
// kept small (256 bytes): it is most of what the service itself holds per
// stream.
type detached struct {
	b     *Broadcaster
	conn  net.Conn        // the connection: plain TCP, or TLS
	raw   syscall.RawConn // plain: the socket, written to with writeTry
	sock  *Conn           // TLS: the socket under it, whose writes never wait
	st    *presence.Stream
	feed  *feed // guarded by b.feedsMu
	index int   // in feed.streams, guarded by b.feedsMu

	mu       sync.Mutex
	fs       followState // guarded by mu
	busy     bool        // a drain goroutine owns the writes, or the stream is not yet detached
	closed   bool        // no more writes
	warnOwe  bool        // the token-expiring event is owed
	watchOwe bool        // the watch has news not yet written
	strays   uint8       // line ends the client sent after its request (run's)
	queued   atomic.Bool // in the wake queue (detach_watch.go)
	pending  []byte      // what drain writes next, while busy
	pendSeq  uint64      // the publish pending delivers, 0 if none
	reason   string      // why the service cut the stream, if it did

	timeout time.Duration
	room    string
	log     *slog.Logger
	signed  *tokenEnd   // nil unless signed in
	watch   *watchState // nil unless the stream watches rooms
}

// tokenEnd is when a signed-in detached stream is warned and cut.
type tokenEnd struct {
	expiry expiry
	timers [2]*time.Timer // the warning's and the end's
}

// detachable reports whether r's stream may leave net/http's path:
// HTTP/1.1 without a body, on a connection the service accepted itself (a
// socket the kernel can be asked to write to without waiting: any, for
// plain HTTP; a Conn, under TLS).
func detachable(r *http.Request) bool {
	if r.ProtoMajor != 1 || r.ContentLength > 0 || len(r.TransferEncoding) > 0 {
		return false
	}
	c := connOf(r)
	if c == nil {
		return false
	}
	sock, plain := sockets(c.conn)
	return sock != nil || plain != nil
}

// sockets returns what a detached stream on conn writes to without
// waiting: under TLS, the service's own Conn (nil if the connection under
// TLS is not one); otherwise the plain socket (nil if there is none).
func sockets(conn net.Conn) (sock *Conn, plain syscall.Conn) {
	if tc, ok := conn.(*tls.Conn); ok {
		sock, _ = tc.NetConn().(*Conn)
		return sock, nil
	}
	plain, _ = conn.(syscall.Conn)
	return nil, plain
}

// detachment is what a stream's handler hands over with its connection.
type detachment struct {
	heads  streamHeaders // the stream's headers, set on the response's with the handler's own
	first  []byte        // the retry field and the first events
	fs     followState   // what first told the stream
	expiry expiry        // zero unless signed in (tokenExpiry)
}

// tokenExpiry is the expiry of a stream that joins now with a token that
// expires at exp and is accepted leeway longer; zero unless signed.
func tokenExpiry(signed bool, exp time.Time, leeway time.Duration) expiry {
	if !signed {
		return expiry{}
	}
	return newExpiry(time.Now(), exp, leeway)
}

// newDetached is a stream of room ("" for GET /watch) that will be
// detached once joined: made before the join and the watch, so that the
// hub can end it (kick) and wake it (woken) from then on. Until detach it
// is busy: what comes meanwhile is owed, and written once it is detached.
func (b *Broadcaster) newDetached(room string, timeout time.Duration, log *slog.Logger) *detached {
	return &detached{b: b, room: room, timeout: timeout, log: log, busy: true}
}

// kick ends the stream at the hub's word (presence.JoinOptions.End): a
// disconnect through the server API. It never blocks.
func (d *detached) kick() { d.cut(reasonDisconnected) }

// detach takes r's connection over for d, whose stream st joined the room
// (st nil: a stream of GET /watch, whose watch d holds): it writes the
// response head and first events, and from then on the room's feed and
// the wake workers write to it, and the stream is d's: it leaves the room
// and closes its watch when its connection ends. Taking the connection
// cannot fail for a request detachable passed; if it did, the stream ends
// and r gets a 500.
func (b *Broadcaster) detach(w http.ResponseWriter, r *http.Request, d *detached, st *presence.Stream, x detachment) {
	conn, rw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		b.metrics.disconnect.WithLabelValues(reasonClient).Inc() // it was counted as a connect
		if st != nil {
			st.Leave()
		}
		if d.watch != nil {
			d.watch.wt.Close()
		}
		writeError(w, http.StatusInternalServerError, "the stream's connection could not be taken over")
		return
	}
	var raw syscall.RawConn
	sock, plain := sockets(conn)
	switch {
	case sock != nil:
		// Before anyone may cut the stream: a TLS alert must never
		// wait.
		err = sock.tryWrites(func() { go d.drainOwed() })
	case plain != nil:
		raw, err = plain.SyscallConn()
	}
	d.mu.Lock()
	d.conn, d.st, d.fs = conn, st, x.fs
	d.raw, d.sock = raw, sock
	kicked := d.closed // by the hub, since the join
	d.mu.Unlock()
	b.streams.Add(1)
	if kicked || (raw == nil && sock == nil) || err != nil || !d.strayOnly(rw.Reader) {
		// Bytes after the request are a client that pipelines
		// requests on a stream it was told would close: nothing to
		// serve. (A connection without a descriptor cannot happen:
		// detachable checked.)
		d.cut(reasonClient)
		go d.run()
		return
	}
	_ = conn.SetDeadline(time.Time{}) // net/http's, if any, were for the request
	wt := newWriteTry()
	d.mu.Lock()
	d.busy = false
	x.heads.set(w.Header(), true)
	d.send(append(responseHead(w.Header()), x.first...), 0, wt)
	if !d.closed {
		b.metrics.deliveries.Inc() // the first count times no fan-out
	}
	if d.watchOwe && !d.busy && !d.closed { // woken before it was detached
		d.writeWatch(nil, wt)
	}
	d.mu.Unlock()
	if !x.expiry.none() {
		now := time.Now()
		d.signed = &tokenEnd{expiry: x.expiry}
		d.signed.timers[0] = time.AfterFunc(x.expiry.warnAt.Sub(now), d.warn)
		d.signed.timers[1] = time.AfterFunc(x.expiry.endsAt.Sub(now), func() { d.cut(reasonExpired) })
	}
	var attached bool
	if st == nil {
		attached = b.attachAlone(d)
	} else {
		attached = b.attach(d, st)
	}
	go d.run() // after attach: finish, which detaches, comes after it
	if !attached {
		d.cut(reasonShutdown)
		return
	}
	// A publish between the join and the attach reached no feed with
	// this stream in it: catch up once; every later one finds it there.
	if st != nil {
		d.offer(st.Latest(), nil, wt)
	}
}

// run is the stream's goroutine: it waits for the connection to end, then
// ends the stream. Its stack holds one byte.
func (d *detached) run() {
	var one [1]byte
	var err error
	for {
		// A byte: a client that sends after its request. A few line
		// ends are let pass (RFC 9112 2.2); anything else is cut.
		var n int
		n, err = d.conn.Read(one[:])
		if err != nil || n == 0 || !d.stray(one[0]) {
			break
		}
	}
	d.closeSocket() // no close_notify over TLS: the client went, or sent what it must not
	d.finish(err)
}

// maxStray is how many line ends a client may send after its request:
// some clients end a request with an extra CRLF, which servers ignore.
const maxStray = 4

// stray counts c against the line ends a client may send after its
// request, and reports whether it may.
func (d *detached) stray(c byte) bool {
	if (c != '\r' && c != '\n') || d.strays >= maxStray {
		return false
	}
	d.strays++
	return true
}

// strayOnly reports whether what net/http read past the request is only
// line ends the stream lets pass, counting them.
func (d *detached) strayOnly(br *bufio.Reader) bool {
	p, _ := br.Peek(br.Buffered())
	for _, c := range p {
		if !d.stray(c) {
			return false
		}
	}
	return true
}

// finish ends the stream once its connection did: no more writes, out of
// its feed, out of the room, counted by why it ended.
func (d *detached) finish(readErr error) {
	d.mu.Lock()
	d.closed = true
	d.pending = nil
	reason := d.reason
	d.mu.Unlock()
	if d.signed != nil {
		for _, t := range d.signed.timers {
			t.Stop()
		}
	}
	b := d.b
	if reason == "" {
		switch {
		case peerTimedOut(d.conn) || gaveUp(readErr):
			d.log.Debug("stream evicted: peer took nothing for the TCP user timeout", "room", d.room)
			reason = reasonEvicted
		case b.closing.Err() != nil:
			reason = reasonShutdown
		default:
			reason = reasonClient
		}
	}
	// Counted before it leaves its room, as on net/http's path: whoever
	// sees the room's count drop finds the end counted. Not counted as an
	// early end of its connection (conn.go): an HTTP/1.1 connection
	// carries one stream, which ends with it.
	b.metrics.disconnect.WithLabelValues(reason).Inc()
	if d.st != nil {
		b.detachFeed(d)
		d.st.Leave()
	} else {
		b.detachAlone(d)
	}
	if d.watch != nil {
		d.watch.wt.Close()
	}
	b.streams.Done()
}

// cut ends the stream for reason: it closes the connection, which ends
// run's Read. The first reason given is the one counted; with none,
// finish tells why from the connection.
func (d *detached) cut(reason string) {
	d.mu.Lock()
	if d.reason == "" {
		d.reason = reason
	}
	d.closed = true
	// Over TLS, the close_notify alert, written without waiting, so that
	// a client can tell the end from a cut connection; but not while a
	// drain owns the socket (busy: it may be waiting in a write, and the
	// alert would go behind it) or before detach made writes never wait.
	alert := d.sock != nil && !d.busy
	conn := d.conn // nil if the hub ends the stream before detach took it
	d.mu.Unlock()
	switch {
	case conn == nil:
	case alert:
		conn.Close()
	default:
		d.closeSocket()
	}
}

// closeSocket closes the stream's connection without a word to the
// client (no TLS alert).
func (d *detached) closeSocket() {
	if tc, ok := d.conn.(*tls.Conn); ok {
		tc.NetConn().Close()
		return
	}
	d.conn.Close()
}
