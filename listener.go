package main

import (
	"errors"
	"net"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// tunedListener sets two socket options on every accepted connection:
//   - TCP_USER_TIMEOUT, so that a peer whose network vanished (no FIN, no
//     RST) is dropped once a heartbeat goes unacknowledged that long;
//     otherwise writes to it succeed for many minutes.
//   - a small SO_SNDBUF, so that a client that stops reading pins little
//     kernel memory before its writes stall and the write deadline cuts it.
type tunedListener struct {
	net.Listener
	userTimeout time.Duration
	sendBuffer  int
}

func (l *tunedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return c, nil
	}
	if l.sendBuffer > 0 {
		_ = tc.SetWriteBuffer(l.sendBuffer)
	}
	if l.userTimeout > 0 {
		if raw, err := tc.SyscallConn(); err == nil {
			_ = raw.Control(func(fd uintptr) {
				_ = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, int(l.userTimeout.Milliseconds()))
			})
		}
	}
	return &peerConn{TCPConn: tc}, nil
}

// peerConn remembers whether the kernel gave up on the peer
// (ETIMEDOUT): TCP_USER_TIMEOUT fired because the peer acknowledged
// nothing, or kept a zero window (stopped reading), for that long. The
// stream then ends through whichever read or write sees the error first,
// often net/http's background read, which only cancels the request; the
// stream handler asks PeerTimedOut to count it as evicted, not as a
// client that went away.
type peerConn struct {
	*net.TCPConn
	timedOut atomic.Bool
}

func (c *peerConn) Read(p []byte) (int, error) {
	n, err := c.TCPConn.Read(p)
	c.check(err)
	return n, err
}

func (c *peerConn) Write(p []byte) (int, error) {
	n, err := c.TCPConn.Write(p)
	c.check(err)
	return n, err
}

func (c *peerConn) check(err error) {
	if err != nil && errors.Is(err, syscall.ETIMEDOUT) {
		c.timedOut.Store(true)
	}
}

// PeerTimedOut reports whether the kernel dropped the connection because
// the peer took no bytes for TCP_USER_TIMEOUT.
func (c *peerConn) PeerTimedOut() bool { return c.timedOut.Load() }
