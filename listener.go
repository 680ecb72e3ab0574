package main

import (
	"net"
	"time"

	"golang.org/x/sys/unix"

	"github.com/presence/presence/handlers"
)

// tunedListener sets two socket options on every accepted connection:
//   - TCP_USER_TIMEOUT, so that a peer whose network vanished (no FIN, no
//     RST) is dropped once a heartbeat goes unacknowledged that long;
//     otherwise writes to it succeed for many minutes.
//   - a small SO_SNDBUF, so that a client that stops reading pins little
//     kernel memory before its writes stall and the write deadline cuts it.
//
// It hands each one out as a handlers.Conn, which tells a stream whether
// the kernel gave up on its peer, and lets a stream over TLS write without
// waiting.
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
	return handlers.NewConn(tc), nil
}
