package handlers

import (
	"net/http"
	"time"
)

// streamWriter writes one stream's bytes, and owns the
// stream's write deadline from start to end:
//
//   - It arms the deadline before the first byte of a write reaches the
//     ResponseWriter, since net/http may push bytes to the socket inside
//     Write (a write bigger than its buffers), not only in Flush. A deadline
//     left from an earlier write would already have passed there.
//   - It clears the deadline after a successful flush. A deadline left set
//     outlives its write: over HTTP/2 it arms a timer that resets the stream
//     when it fires, even with nothing to write.
//
// So a stream is cut off only by a write that stalls for the whole timeout,
// and the writer knows when that was the case (stalled), whatever error the
// protocol returned for it. After the first failure nothing more is tried.
// (Over HTTP/2 the cut is a reset frame: on a connection that takes no bytes
// at all it cannot go out, and the server's HTTP/2 WriteByteTimeout, set in
// main.go, closes the connection instead.)
//
// Arming and clearing each move one runtime timer (HTTP/1.1) or send one
// message to the connection's serve loop (HTTP/2), once per flush: a burst
// of writes before one flush arms once.
type streamWriter struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration
	armed   time.Time // the deadline of the write in progress; zero: none set
	err     error     // the first failure
	stalled bool      // err came after the armed deadline had passed
}

func newStreamWriter(w http.ResponseWriter, timeout time.Duration) *streamWriter {
	return &streamWriter{w: w, rc: http.NewResponseController(w), timeout: timeout}
}

// write buffers or sends p, under a deadline armed first if none is.
func (s *streamWriter) write(p []byte) {
	if s.err != nil || !s.arm() {
		return
	}
	if _, err := s.w.Write(p); err != nil {
		s.fail(err)
	}
}

// flush sends what write buffered and clears the deadline. With nothing
// written since the last flush it does nothing.
func (s *streamWriter) flush() error {
	if s.err != nil || s.armed.IsZero() {
		return s.err
	}
	if err := s.rc.Flush(); err != nil {
		s.fail(err)
		return s.err
	}
	s.armed = time.Time{}
	if err := s.rc.SetWriteDeadline(time.Time{}); err != nil {
		s.err = err
	}
	return s.err
}

// arm sets the write deadline unless one is set, and reports whether
// writing may go on.
func (s *streamWriter) arm() bool {
	if !s.armed.IsZero() {
		return true
	}
	d := time.Now().Add(s.timeout)
	if err := s.rc.SetWriteDeadline(d); err != nil {
		s.err = err
		return false
	}
	s.armed = d
	return true
}

// fail records err, and whether the write it ended had stalled: its own
// deadline had passed. The protocols report a stall differently (HTTP/1.1:
// a net.OpError of os.ErrDeadlineExceeded; HTTP/2: os.ErrDeadlineExceeded
// from the stream's reset, or "client disconnected" if the whole
// connection went down behind it), and a stream the client closed during a
// write fails the same way without a stall, so the clock decides.
func (s *streamWriter) fail(err error) {
	s.err = err
	s.stalled = !s.armed.IsZero() && !time.Now().Before(s.armed)
}

// evicted reports whether the stream ended because a write stalled for the
// whole timeout, as opposed to the client going away.
func (s *streamWriter) evicted() bool { return s.stalled }
