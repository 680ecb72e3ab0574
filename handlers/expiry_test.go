package handlers

import (
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
