package handlers

import (
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Conn is a client connection as the service accepts it: main's listener
// wraps every TCP connection it accepts in one. It adds two things a
// stream needs of its socket that net.TCPConn does not give:
//
//   - whether the kernel gave up on the peer (PeerTimedOut);
//   - writes that never wait (tryWrites), for a stream over TLS that
//     leaves net/http's path (detach.go). crypto/tls encrypts a write and
//     writes the records to the connection under it, so the only place a
//     TLS stream's write can be kept from waiting for a slow reader is
//     here, under TLS.
type Conn struct {
	*net.TCPConn
	timedOut atomic.Bool
	try      atomic.Pointer[tryWrites] // nil: writes wait, as a TCPConn's
}

// NewConn wraps an accepted connection.
func NewConn(c *net.TCPConn) *Conn { return &Conn{TCPConn: c} }

// tryWrites is the state of a Conn whose writes never wait: what the
// socket did not take at once, owed to it in order. A detached stream
// takes what is owed after each write (takeOwed); from then on its drain
// goroutine owns the socket (held), and every write, its own catch-up or
// a record crypto/tls writes by itself (an alert, or the answer to a
// client's KeyUpdate, from the stream's reading goroutine), goes after
// what the drain is writing, until the drain finds nothing owed
// (takeOwed with release). So owed holds at most one frame's records and
// the few records a client can make TLS answer between two of its frames.
type tryWrites struct {
	raw  syscall.RawConn
	mu   sync.Mutex
	w    *writeTry // guarded by mu
	owed []byte    // guarded by mu
	held bool      // guarded by mu: the drain writes what it took
	left func()    // see Conn.tryWrites
}

// Read reads as a TCPConn does, noting a peer the kernel gave up on.
func (c *Conn) Read(p []byte) (int, error) {
	n, err := c.TCPConn.Read(p)
	c.check(err)
	return n, err
}

// Write writes as a TCPConn does, or, once tryWrites was called, writes
// what the socket takes at once, keeps the rest for takeOwed, and reports
// all of p written.
func (c *Conn) Write(p []byte) (n int, err error) {
	if t := c.try.Load(); t != nil {
		n, err = t.write(p)
	} else {
		n, err = c.TCPConn.Write(p)
	}
	c.check(err)
	return n, err
}

// tryWrites makes the connection's writes never wait from now on. left is
// called, without waiting and under no lock of the Conn's, when a write
// leaves bytes owed with no drain holding them: most often the stream's
// own writer, which takes them at once, but it may be a record crypto/tls
// wrote by itself from the reading goroutine, which nobody else would take
// until the stream's next write.
func (c *Conn) tryWrites(left func()) error {
	raw, err := c.SyscallConn()
	if err != nil {
		return err
	}
	c.try.Store(&tryWrites{raw: raw, w: newWriteTry(), left: left})
	return nil
}

// takeOwed returns, and forgets, what writes kept since it was last
// called. If it returns anything, the caller's drain holds the socket
// from then on; with release, a drain that found nothing more to write
// lets go of it, unless writes were owed meanwhile: then it gets them, to
// write first, and holds on.
func (c *Conn) takeOwed(release bool) []byte {
	t := c.try.Load()
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.owed
	t.owed = nil
	t.held = (t.held && !release) || len(p) > 0
	return p
}

// writeWaiting writes p to the socket itself, waiting for it until
// deadline: a detached stream's drain, writing what it was owed.
func (c *Conn) writeWaiting(p []byte, deadline time.Time) error {
	err := writeBefore(c.TCPConn, p, deadline)
	c.check(err)
	return err
}

// writeBefore writes p to c, waiting for it until deadline, and clears
// the deadline after a write that went through.
func writeBefore(c net.Conn, p []byte, deadline time.Time) error {
	_ = c.SetWriteDeadline(deadline)
	_, err := c.Write(p)
	if err == nil {
		_ = c.SetWriteDeadline(time.Time{})
	}
	return err
}

func (t *tryWrites) write(p []byte) (int, error) {
	t.mu.Lock()
	if len(t.owed) > 0 || t.held { // behind: p goes after what is owed
		t.owed = append(t.owed, p...)
		t.mu.Unlock()
		return len(p), nil
	}
	n, err := t.w.to(t.raw, p)
	if err != nil {
		t.mu.Unlock()
		return n, err
	}
	left := n < len(p)
	if left {
		t.owed = append(t.owed, p[n:]...)
	}
	t.mu.Unlock()
	if left {
		t.left()
	}
	return len(p), nil
}

func (c *Conn) check(err error) {
	if gaveUp(err) {
		c.timedOut.Store(true)
	}
}

// gaveUp reports whether err is the kernel giving up on an established
// connection's peer after TCP_USER_TIMEOUT (or its retransmissions). The
// kernel reports ETIMEDOUT, or the last soft error it saw while it
// retried: a peer whose network vanished often leaves EHOSTUNREACH (its
// address no longer answers ARP) or ENETUNREACH. Neither ends an
// established connection by itself, so either, as a read or write error,
// means the kernel gave up.
func gaveUp(err error) bool {
	return err != nil && (errors.Is(err, syscall.ETIMEDOUT) || errors.Is(err, syscall.EHOSTUNREACH) || errors.Is(err, syscall.ENETUNREACH))
}

// PeerTimedOut reports whether the kernel dropped the connection because
// the peer acknowledged nothing, or kept a zero window (stopped reading),
// for TCP_USER_TIMEOUT. The stream then ends through whichever read or
// write sees the error first, often net/http's background read, which
// only cancels the request; the stream asks PeerTimedOut to count it as
// evicted, not as a client that went away.
func (c *Conn) PeerTimedOut() bool { return c.timedOut.Load() }
