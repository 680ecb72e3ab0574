package handlers

import (
	"bytes"
	"net/http"
	"syscall"
	"time"

	"github.com/presence/presence/presence"
)

// How a detached stream is written to: a write that never waits (send),
// and for what it does not take, a goroutine that waits under the write
// timeout (drain). See detach.go.

// writeTry is one write that never waits (detached.send): its bytes and
// results, with the function given to RawConn.Write made once for many
// writes (a fan-out's), not once per write.
type writeTry struct {
	p   []byte
	n   int
	err error
	fn  func(fd uintptr) bool
}

func newWriteTry() *writeTry {
	w := &writeTry{}
	w.fn = w.write
	return w
}

// write is the write system call of send: it never waits (the socket is
// non-blocking), and reports done so that RawConn.Write does not wait
// either.
func (w *writeTry) write(fd uintptr) bool {
	w.n = 0
	for w.n < len(w.p) {
		n, err := syscall.Write(int(fd), w.p[w.n:])
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			if err != syscall.EAGAIN {
				w.err = err
			}
			return true
		}
		w.n += n
	}
	return true
}

// to writes p to raw without waiting, and returns how much of it the
// socket took.
func (w *writeTry) to(raw syscall.RawConn, p []byte) (int, error) {
	w.p, w.n, w.err = p, 0, nil
	err := raw.Write(w.fn) // fails without calling w.fn once the socket is closed
	n := w.n
	if err == nil {
		err = w.err
	}
	w.p, w.err = nil, nil
	return n, err
}

// offer brings the stream up to next, unless a drain goroutine owns its
// writes (it catches up itself when it is done) or it is closed. scratch
// is a buffer the caller lends for the frame; the write either takes
// all of it or copies the rest. It reports whether it wrote a count event.
func (d *detached) offer(next *presence.Update, scratch []byte, w *writeTry) (delivered bool, _ []byte) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.busy || d.closed || !newer(next, d.fs.cur) {
		// A drain or the catch-up after the attach may have brought the
		// stream past the update a fan-out under way offers.
		return false, scratch
	}
	p, seq, wrote := d.b.catchUp(scratch[:0], &d.fs, next)
	if len(p) > 0 {
		d.send(p, seq, w)
	}
	return wrote && !d.closed, p
}

// newer reports whether u is a later update of its room than cur: a later
// publish, or a later heartbeat of the same one.
func newer(u, cur *presence.Update) bool {
	return u.Seq > cur.Seq || (u.Seq == cur.Seq && u.Heartbeats > cur.Heartbeats)
}

// send writes p without waiting, under d.mu, with w; what the socket does
// not take goes to a drain goroutine. seq is the publish p delivers, 0 if
// none.
func (d *detached) send(p []byte, seq uint64, w *writeTry) {
	rest, err := d.trySend(p, w)
	switch {
	case err != nil:
		d.gone(err)
	case len(rest) == 0:
		if seq != 0 {
			d.st.Delivered(seq)
		}
	default: // the socket took part or nothing: drain waits for it
		d.busy = true
		d.pending, d.pendSeq = rest, seq
		go d.drain()
	}
}

// trySend writes p without waiting, under d.mu, and returns what the
// socket did not take, to be written as it is: the rest of p (a copy, p
// being lent), or over TLS the rest of p's records. w is the plain
// socket's write.
func (d *detached) trySend(p []byte, w *writeTry) ([]byte, error) {
	if d.sock != nil {
		_, err := d.conn.Write(p) // TLS, over a socket whose writes never wait
		return d.sock.takeOwed(false), err
	}
	n, err := w.to(d.raw, p)
	if err != nil || n == len(p) {
		return nil, err
	}
	return append(make([]byte, 0, len(p)-n), p[n:]...), nil
}

// gone ends the stream after a write failed, under d.mu: the connection
// is gone, and run sees it too and ends the stream.
func (d *detached) gone(err error) {
	d.closed = true
	if gaveUp(err) && d.reason == "" {
		d.reason = reasonEvicted
	}
	d.closeSocket()
}

// drain writes what the socket did not take, under the write timeout, and
// then whatever the stream fell behind by, until it is caught up; then the
// feed writes to it again. A write that stalls for the whole timeout cuts
// the stream as evicted.
func (d *detached) drain() {
	var w *writeTry // for the catch-up's writes, made if needed
	for {
		d.mu.Lock()
		p, seq := d.pending, d.pendSeq
		d.mu.Unlock()
		deadline := time.Now().Add(d.timeout)
		if err := d.writeWaiting(p, deadline); err != nil {
			if !time.Now().Before(deadline) {
				d.log.Debug("stream evicted: write stalled", "room", d.room, "err", err)
				d.cut(reasonEvicted)
			} else {
				d.cut("") // the client went, or the kernel gave up on it: finish tells
			}
			return
		}
		if seq != 0 {
			d.st.Delivered(seq)
		}
		d.mu.Lock()
		if d.closed {
			d.mu.Unlock()
			return
		}
		p, seq = p[:0], 0
		if d.st != nil {
			var wrote bool
			p, seq, wrote = d.b.catchUp(p, &d.fs, d.st.Latest())
			if wrote {
				d.b.metrics.deliveries.Inc()
			}
		}
		if d.watch != nil {
			var n int
			p, n = d.appendWatch(p)
			d.b.countDeliveries(n)
		}
		if d.warnOwe {
			p, d.warnOwe = append(p, d.signed.expiry.event...), false
		}
		var rest []byte
		var err error
		if len(p) == 0 {
			seq = 0 // a publish that told the stream nothing new
		} else {
			if w == nil && d.sock == nil {
				w = newWriteTry()
			}
			rest, err = d.trySend(p, w)
		}
		if err == nil && len(rest) == 0 && d.sock != nil {
			rest = d.sock.takeOwed(true) // what TLS wrote meanwhile, if anything
		}
		switch {
		case err != nil:
			d.gone(err)
			d.mu.Unlock()
			return
		case len(rest) == 0:
			if seq != 0 {
				d.st.Delivered(seq)
			}
			d.busy, d.pending, d.pendSeq = false, nil, 0
			d.mu.Unlock()
			return
		}
		d.pending, d.pendSeq = rest, seq
		d.mu.Unlock()
	}
}

// drainOwed hands to a drain what a TLS stream's socket owes while no
// write of the stream's is under way: a record crypto/tls wrote by itself
// (an alert, the answer to a client's KeyUpdate) that the socket did not
// take whole. A writer under way, or its drain, takes it itself.
func (d *detached) drainOwed() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.busy || d.closed {
		return
	}
	if rest := d.sock.takeOwed(false); len(rest) > 0 {
		d.busy = true
		d.pending, d.pendSeq = rest, 0
		go d.drain()
	}
}

// writeWaiting writes p to the socket, waiting for it until deadline.
func (d *detached) writeWaiting(p []byte, deadline time.Time) error {
	if d.sock != nil {
		return d.sock.writeWaiting(p, deadline)
	}
	return writeBefore(d.conn, p, deadline)
}

// warn sends the token-expiring event, on the expiry's timer.
func (d *detached) warn() {
	d.mu.Lock()
	defer d.mu.Unlock()
	switch {
	case d.closed:
	case d.busy:
		d.warnOwe = true
	default:
		d.send(d.signed.expiry.event, 0, newWriteTry())
	}
}

// responseHead is the HTTP/1.1 response head of a detached stream: what
// net/http would have written for it (status, the handler's headers, Date,
// and Connection: close, since the body ends with the connection).
func responseHead(h http.Header) []byte {
	var buf bytes.Buffer
	buf.WriteString("HTTP/1.1 200 OK\r\n")
	_ = h.WriteSubset(&buf, map[string]bool{"Transfer-Encoding": true, "Date": true, "Connection": true})
	buf.WriteString("Date: " + time.Now().UTC().Format(http.TimeFormat) + "\r\nConnection: close\r\n\r\n")
	return buf.Bytes()
}
