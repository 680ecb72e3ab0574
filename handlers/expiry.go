package handlers

import (
	"encoding/json"
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
	data, _ := json.Marshal(struct {
		EndsAtMs int64 `json:"ends_at_ms"`
	}{end.UnixMilli()}) // a number cannot fail
	return expiry{
		warnAt: end.Add(-min(maxExpiryWarning, max(0, end.Sub(join))/2)),
		endsAt: end,
		event:  appendEvent(nil, eventExpiring, data),
	}
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
func (x *expiry) warn(out *streamWriter) error {
	out.write(x.event)
	return out.flush()
}
