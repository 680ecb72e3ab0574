package handlers

import (
	"net/http"
	"strconv"
	"sync"
	"time"
)

// A signed-in stream ends with its token: at the token's exp plus the
// verifier's leeway (the clock skew it allows), when the token would no
// longer be accepted. Shortly before, it gets one event,
//
//	event: token-expiring
//	data: {"ends_at_ms":<unix ms at which the server ends the stream>}
//
// at end - min(maxExpiryWarning, (end - join)/2), so that the page can
// fetch a fresh token and open a new stream before this one ends (the
// widget does). The same person's new stream takes the old one's place
// without a change in the count.

// maxExpiryWarning is the longest a stream is warned before it ends: time
// for a page to fetch a token and open a new stream.
const maxExpiryWarning = 30 * time.Second

// expiry is when a signed-in stream is warned and when it ends. The zero
// expiry (a stream without a token) is never warned and never ends.
type expiry struct {
	warnAt, endsAt time.Time
	event          []byte // the token-expiring event
}

// newExpiry is the expiry of a stream that joined at join with a token that
// expires at exp and is accepted leeway longer.
func newExpiry(join, exp time.Time, leeway time.Duration) expiry {
	end := exp.Add(leeway)
	ev := append(make([]byte, 0, 64), "event: token-expiring\ndata: {\"ends_at_ms\":"...)
	ev = strconv.AppendInt(ev, end.UnixMilli(), 10)
	return expiry{
		warnAt: end.Add(-min(maxExpiryWarning, max(0, end.Sub(join))/2)),
		endsAt: end,
		event:  append(ev, "}\n\n"...),
	}
}

// eventSink is where a stream's bytes go (the stream's writer).
type eventSink interface {
	write(p []byte)
	flush() error
}

// none reports whether x is the zero expiry.
func (x *expiry) none() bool { return x.endsAt.IsZero() }

// warning returns a channel that receives at the warning time (nil, which
// never receives, for the zero expiry), and a function that stops its
// timer.
func (x *expiry) warning() (<-chan time.Time, func() bool) {
	if x.none() {
		return nil, func() bool { return false }
	}
	t := time.NewTimer(time.Until(x.warnAt))
	return t.C, t.Stop
}

// warn writes the token-expiring event.
func (x *expiry) warn(out eventSink) error {
	out.write(x.event)
	return out.flush()
}

// flushWriter is a ResponseWriter that r3labs can stream to.
type flushWriter interface {
	http.ResponseWriter
	http.Flusher
}

// wrap returns the writer to hand r3labs, which writes a stream's events
// from its own loop and cannot send to one subscriber: at the warning time,
// a timer writes the event to out between two of r3labs's events (never
// inside one), under a lock that r3labs's writes take too. The returned stop
// must be called once r3labs has returned: after it, the timer writes
// nothing. For the zero expiry, w itself.
func (x *expiry) wrap(w flushWriter, out eventSink) (flushWriter, func()) {
	if x.none() {
		return w, func() {}
	}
	ew := &expiringWriter{flushWriter: w, x: x, out: out}
	ew.timer = time.AfterFunc(time.Until(x.warnAt), ew.due)
	return ew, ew.stop
}

// expiringWriter is the writer wrap returns.
type expiringWriter struct {
	flushWriter
	x     *expiry
	out   eventSink
	timer *time.Timer

	mu      sync.Mutex
	inEvent bool // bytes of an event were written and not yet flushed
	pending bool // the warning is due once the event in progress is flushed
	done    bool // warned, or stopped
}

// Write implements http.ResponseWriter. r3labs writes an event in several
// calls and then flushes.
func (e *expiringWriter) Write(p []byte) (int, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.inEvent = true
	return e.flushWriter.Write(p)
}

// Flush implements http.Flusher, and writes a warning that came due while
// an event was being written.
func (e *expiringWriter) Flush() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.flushWriter.Flush()
	e.inEvent = false
	if e.pending && !e.done {
		e.done = true
		_ = e.x.warn(e.out) // a failed write ends the request, and r3labs with it
	}
}

// due runs at the warning time, on the timer's goroutine.
func (e *expiringWriter) due() {
	e.mu.Lock()
	defer e.mu.Unlock()
	switch {
	case e.done:
	case e.inEvent:
		e.pending = true
	default:
		e.done = true
		_ = e.x.warn(e.out)
	}
}

// stop keeps the timer from writing once r3labs is done with the stream;
// a warning being written finishes first.
func (e *expiringWriter) stop() {
	e.timer.Stop()
	e.mu.Lock()
	e.done = true
	e.mu.Unlock()
}
