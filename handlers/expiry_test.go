package handlers

import (
	"net/http/httptest"
	"strconv"
	"testing"
	"time"
)

// The warning comes half-way through a short token's stream, and 30 s
// before the end of a long one; ends_at_ms is exp plus the leeway.
func TestExpiryTimes(t *testing.T) {
	join := time.UnixMilli(1_000_000)
	for _, c := range []struct {
		exp, leeway, warnAfter time.Duration // exp and warnAfter from join
	}{
		{3 * time.Second, 5 * time.Second, 4 * time.Second},
		{time.Hour, 5 * time.Second, time.Hour + 5*time.Second - 30*time.Second},
		{-2 * time.Second, 5 * time.Second, 1500 * time.Millisecond}, // within the leeway already
		{-time.Minute, 0, -time.Minute},                              // never before the end
	} {
		x := newExpiry(join, join.Add(c.exp), c.leeway)
		if want := join.Add(c.exp + c.leeway); !x.endsAt.Equal(want) {
			t.Errorf("exp %v: ends at %v, want %v", c.exp, x.endsAt, want)
		}
		if got := x.warnAt.Sub(join); got != c.warnAfter {
			t.Errorf("exp %v: warned %v after the join, want %v", c.exp, got, c.warnAfter)
		}
		if want := "event: token-expiring\ndata: {\"ends_at_ms\":" + strconv.FormatInt(join.Add(c.exp+c.leeway).UnixMilli(), 10) + "}\n\n"; string(x.event) != want {
			t.Errorf("event %q, want %q", x.event, want)
		}
	}
}

// recorderSink writes a stream's own bytes to the same recorder r3labs
// writes to.
type recorderSink struct{ rec *httptest.ResponseRecorder }

func (s recorderSink) write(p []byte) { s.rec.Write(p) }
func (s recorderSink) flush() error   { return nil }

// Under r3labs, a warning that comes due while an event is being written
// waits for that event's flush: it never lands inside an event.
func TestExpiryWarningBetweenR3labsEvents(t *testing.T) {
	rec := httptest.NewRecorder()
	x := newExpiry(time.Now(), time.Now().Add(time.Hour), 0)
	w, stop := x.wrap(rec, recorderSink{rec})
	defer stop()
	ew := w.(*expiringWriter)
	w.Write([]byte("id: 1\n"))
	ew.due() // the timer, in the middle of r3labs's event
	w.Write([]byte("data: 3\nevent: user count\n\n"))
	if got := rec.Body.String(); got != "id: 1\ndata: 3\nevent: user count\n\n" {
		t.Fatalf("before the flush: %q", got)
	}
	w.Flush()
	w.Write([]byte(": hb\n\n"))
	w.Flush()
	want := "id: 1\ndata: 3\nevent: user count\n\n" + string(x.event) + ": hb\n\n"
	if got := rec.Body.String(); got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	// Between events it goes out at once, and only once; after stop, never.
	rec2 := httptest.NewRecorder()
	w2, stop2 := x.wrap(rec2, recorderSink{rec2})
	w2.(*expiringWriter).due()
	w2.(*expiringWriter).due()
	stop2()
	if got := rec2.Body.String(); got != string(x.event) {
		t.Fatalf("idle stream got %q", got)
	}
	rec3 := httptest.NewRecorder()
	w3, stop3 := x.wrap(rec3, recorderSink{rec3})
	stop3()
	w3.(*expiringWriter).due()
	if rec3.Body.Len() != 0 {
		t.Fatalf("after stop: %q", rec3.Body.String())
	}
}
