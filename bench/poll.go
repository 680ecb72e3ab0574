package main

import (
	"errors"
	"io"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// poller reads the open streams of a run with one epoll loop per core
// instead of one goroutine per stream. Each delivered event then costs the
// tool one read(2) and no goroutine wake-up, no netpoller round and no
// EAGAIN read, so that more of the machine's two shared cores go to the
// server under test, whichever it is. A stream is opened by a goroutine in
// runClient (dial, request, head, first event) and then adopted: its socket
// is duplicated out of Go's netpoller and read here until it ends.
type poller struct {
	epfds []int
	items []atomic.Pointer[polled] // by client id
	next  atomic.Uint32
	stop  atomic.Bool
	loops sync.WaitGroup
}

// polled is one adopted stream.
type polled struct {
	c  *client
	h  streamHooks
	p  *eventParser
	mu sync.Mutex // guards fd against shutdown racing the loop's close
	fd int        // -1 once closed; written only by the owning loop
}

// pollWait bounds each epoll_wait so that close is noticed.
const pollWait = 100 // ms

func newPoller(capacity int) (*poller, error) {
	pl := &poller{items: make([]atomic.Pointer[polled], capacity)}
	for range runtime.GOMAXPROCS(0) {
		fd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
		if err != nil {
			pl.close()
			return nil, err
		}
		pl.epfds = append(pl.epfds, fd)
	}
	for _, fd := range pl.epfds {
		pl.loops.Add(1)
		go pl.loop(fd)
	}
	return pl, nil
}

// adopt takes over the open stream of c. On success the caller must forget
// conn (closing it is fine: the duplicate keeps the socket). On failure the
// caller goes on reading conn itself.
func (pl *poller) adopt(c *client, conn *net.TCPConn, p *eventParser, h streamHooks) bool {
	if int(c.id) >= len(pl.items) || pl.stop.Load() {
		return false
	}
	raw, err := conn.SyscallConn()
	if err != nil {
		return false
	}
	fd := -1
	if cerr := raw.Control(func(s uintptr) { fd, err = syscall.Dup(int(s)) }); cerr != nil || err != nil {
		return false
	}
	syscall.CloseOnExec(fd)
	it := &polled{c: c, h: h, p: p, fd: fd}
	pl.items[c.id].Store(it)
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP, Fd: c.id}
	epfd := pl.epfds[pl.next.Add(1)%uint32(len(pl.epfds))]
	if err := syscall.EpollCtl(epfd, syscall.EPOLL_CTL_ADD, fd, &ev); err != nil {
		pl.items[c.id].Store(nil)
		syscall.Close(fd)
		return false
	}
	// Go's descriptor leaves its netpoller; the socket stays open through
	// the duplicate (O_NONBLOCK is shared, so reads here never block).
	c.polled.Store(it)
	c.conn.Store(nil)
	conn.Close()
	if c.state.Load() == stClosed { // closed by us before it saw it.
		it.shutdown()
	}
	return true
}

// shutdown ends the stream from any goroutine: the loop then reads EOF and
// closes the socket.
func (it *polled) shutdown() {
	it.mu.Lock()
	defer it.mu.Unlock()
	if it.fd >= 0 {
		syscall.Shutdown(it.fd, syscall.SHUT_RDWR)
	}
}

func (pl *poller) loop(epfd int) {
	defer pl.loops.Done()
	events := make([]syscall.EpollEvent, 256)
	buf := make([]byte, 16<<10)
	for !pl.stop.Load() {
		n, err := syscall.EpollWait(epfd, events, pollWait)
		if err != nil {
			if errors.Is(err, syscall.EINTR) {
				continue
			}
			progress("  poller: epoll_wait: %v", err)
			return
		}
		for _, ev := range events[:n] {
			if it := pl.items[ev.Fd].Load(); it != nil {
				pl.readable(it, buf)
			}
		}
		if n > 0 && n < len(events) {
			// Let events gather for a moment: a server's write to a
			// stream whose loop is not waiting in epoll_wait needs no
			// wake-up, which is most of what each delivery would
			// otherwise cost here. It adds at most this much to the
			// latencies measured.
			time.Sleep(batchPause)
		}
	}
}

// batchPause is how long a loop lets events gather between batches.
const batchPause = 200 * time.Microsecond

// readable reads what one stream has (level-triggered: what is left is
// reported again) and ends the stream on EOF, error or a protocol error.
func (pl *poller) readable(it *polled, buf []byte) {
	n, err := syscall.Read(it.fd, buf)
	switch {
	case n > 0:
		v, got, perr := it.p.feed(buf[:n])
		if got {
			it.c.saw(v, it.h.now())
		}
		if perr == nil {
			return
		}
		err = perr
	case errors.Is(err, syscall.EAGAIN), errors.Is(err, syscall.EINTR):
		return
	case err == nil:
		err = io.EOF
	}
	pl.finish(it, failKind(err), err)
}

// finish closes an adopted stream's socket (which also removes it from its
// epoll set) and settles the client.
func (pl *poller) finish(it *polled, kind int, err error) {
	it.mu.Lock()
	fd := it.fd
	it.fd = -1
	it.mu.Unlock()
	if fd < 0 {
		return
	}
	syscall.Close(fd)
	pl.items[it.c.id].Store(nil)
	it.c.end(it.h, kind, err, true)
	if it.h.onExit != nil {
		it.h.onExit()
	}
}

// close stops the loops and ends any stream still adopted.
func (pl *poller) close() {
	pl.stop.Store(true)
	pl.loops.Wait()
	for i := range pl.items {
		if it := pl.items[i].Load(); it != nil {
			pl.finish(it, failEarlyEnd, errors.New("load tool stopped"))
		}
	}
	for _, fd := range pl.epfds {
		syscall.Close(fd)
	}
}
