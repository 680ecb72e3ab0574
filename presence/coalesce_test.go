package presence

import (
	"testing"
	"testing/synctest"
	"time"
)

func TestQuietRoomPublishesAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, rec := newHub(t, HubOptions{Window: 100 * time.Millisecond})
		start := time.Now()
		s, n, err := h.Join("r")
		if err != nil || n != 1 {
			t.Fatalf("join: %d %v", n, err)
		}
		synctest.Wait()
		if p := rec.published(); len(p) != 1 || p[0].count != 1 || p[0].at != start {
			t.Fatalf("publishes %v, want one of 1 at once", p)
		}
		s.Leave()
		s.Leave() // twice is harmless
		synctest.Wait()
		if h.Stats() != (Stats{}) {
			t.Fatalf("after leave: %+v", h.Stats())
		}
	})
}

func TestBurstIsCoalesced(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const window = 100 * time.Millisecond
		h, rec := newHub(t, HubOptions{Window: window})
		var streams []*Stream
		for i := range 50 {
			s, _, err := h.Join("r")
			if err != nil {
				t.Fatal(err)
			}
			streams = append(streams, s)
			if i%5 == 0 {
				time.Sleep(7 * time.Millisecond)
			}
		}
		time.Sleep(time.Second)
		p := rec.published()
		for i := 1; i < len(p); i++ {
			if gap := p[i].at.Sub(p[i-1].at); gap < window {
				t.Fatalf("publishes %v and %v only %s apart", p[i-1], p[i], gap)
			}
		}
		if last := p[len(p)-1].count; last != 50 {
			t.Fatalf("last published %d, want 50", last)
		}
		for _, s := range streams {
			s.Leave()
		}
	})
}

func TestBusyRoomWaitsToSettle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const window = 100 * time.Millisecond
		const fanout = 110 * time.Millisecond // each publish takes this long to reach the last stream
		h, rec := newHub(t, HubOptions{Window: window})
		a, _, _ := h.Join("r")
		rec.mu.Lock()
		rec.onPublish = func(seq uint64) { time.AfterFunc(fanout, func() { a.Delivered(seq) }) }
		rec.mu.Unlock()
		synctest.Wait()

		// A ramp: a join every 10ms for three seconds.
		start := time.Now()
		var ramp []*Stream
		for time.Since(start) < 3*time.Second {
			time.Sleep(10 * time.Millisecond)
			s, _, _ := h.Join("r")
			ramp = append(ramp, s)
		}
		lastChange := time.Now()
		time.Sleep(2 * time.Second)

		p := rec.published()
		// At once (a quiet room), then a window apart until the first
		// fan-out's duration is known, then every 8 fan-outs while busy.
		for i := 1; i < len(p); i++ {
			if gap := p[i].at.Sub(p[i-1].at); gap < window {
				t.Fatalf("publishes %d and %d only %s apart: %v", i-1, i, gap, p)
			}
		}
		if len(p) < 6 || len(p) > 8 {
			t.Fatalf("%d publishes for a 3s ramp, want 6 to 8: %v", len(p), p)
		}
		for i := len(p) - 3; i < len(p)-1; i++ {
			if gap := p[i].at.Sub(p[i-1].at); gap != 8*fanout {
				t.Fatalf("gap %d in a busy room %s, want 8 fan-outs (%s): %v", i, gap, 8*fanout, p)
			}
		}
		// Once the changes stop, the count goes out after half a window.
		last := p[len(p)-1]
		if last.at != lastChange.Add(window/2) || last.count != h.Count("r") {
			t.Fatalf("last publish %v, want the count %d at %s", last, h.Count("r"), lastChange.Add(window/2))
		}

		// Quiet again: a single change goes out at once.
		c, _, _ := h.Join("r")
		synctest.Wait()
		if p := rec.published(); p[len(p)-1].at != time.Now() {
			t.Fatalf("quiet room publish at %v, want now", p[len(p)-1])
		}
		// A single change soon after: one window after that publish, not
		// held back by the long busy window of a room with slow fan-outs.
		time.Sleep(20 * time.Millisecond)
		d, _, _ := h.Join("r")
		time.Sleep(time.Second)
		if p := rec.published(); p[len(p)-1].at.Sub(p[len(p)-2].at) != window {
			t.Fatalf("single change after a publish: %v, want a window later", p[len(p)-2:])
		}
		for _, s := range append(ramp, a, c, d) {
			s.Leave()
		}
	})
}

// A stream misses no publish after its join: the Update it starts from
// (Joined.Update, read under the hub's lock) is replaced by the next
// publish, which carries the newest count; a heartbeat replaces it too,
// with the same Seq.
func TestJoinedUpdateIsReplacedByTheNextPublish(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, rec := newHub(t, HubOptions{})
		a, ja, _ := h.JoinAs("r", Member{}, JoinOptions{})
		if ja.Update.Seq != 0 || ja.Counts.People != 1 {
			t.Fatalf("first join: %+v", ja)
		}
		synctest.Wait()
		replaced := func(u *Update) bool {
			select {
			case <-u.Replaced():
				return true
			default:
				return false
			}
		}
		if !replaced(ja.Update) || a.Latest().Seq != 1 || a.Latest().Counts.People != 1 {
			t.Fatalf("after the first publish: replaced %v, latest %+v", replaced(ja.Update), a.Latest())
		}
		b, jb, _ := h.JoinAs("r", Member{}, JoinOptions{}) // within the window
		if jb.Update != a.Latest() || replaced(jb.Update) {
			t.Fatalf("b starts from %+v, want the latest publish %+v", jb.Update, a.Latest())
		}
		time.Sleep(time.Second)
		if !replaced(jb.Update) || b.Latest().Seq != 2 || b.Latest().Counts.People != 2 {
			t.Fatalf("after b's publish: %+v", b.Latest())
		}
		if n := len(rec.published()); n != 2 {
			t.Fatalf("%d publishes, want 2", n)
		}
		last := b.Latest()
		h.Heartbeat()
		if hb := b.Latest(); !replaced(last) || hb.Seq != 2 || hb.Heartbeats != 1 || hb.Counts != last.Counts || replaced(hb) {
			t.Fatalf("after a heartbeat: %+v", hb)
		}
		a.Leave()
		b.Leave()
	})
}

// The coalescing rule, as a function of a room's timing.
func TestPace(t *testing.T) {
	const w = 100 * time.Millisecond
	now := time.Unix(1000, 0)
	ago := func(d time.Duration) time.Time { return now.Add(-d) }
	for _, c := range []struct {
		name        string
		p           pace
		first, wait time.Duration
	}{
		{"quiet room, never published", pace{window: w, changes: 1}, 0, 0},
		{"a window after the last publish", pace{window: w, lastPub: ago(w), lastChange: ago(0), changes: 1}, 0, 0},
		{"within the window of the last publish", pace{window: w, lastPub: ago(30 * time.Millisecond), changes: 1}, 70 * time.Millisecond, 0},
		{"single change during a fan-out waits to settle",
			pace{window: w, lastPub: ago(w), lastChange: ago(0), changes: 1, lastDelivery: ago(time.Millisecond), fanout: 20 * time.Millisecond}, 0, w / 2},
		{"single change a tenth of a window after the fan-out goes",
			pace{window: w, lastPub: ago(w), lastChange: ago(0), changes: 1, lastDelivery: ago(w / 10)}, 0, 0},
		{"changes still coming wait to settle",
			pace{window: w, lastPub: ago(w), lastChange: ago(10 * time.Millisecond), changes: 5, fanout: 20 * time.Millisecond}, 0, 40 * time.Millisecond},
		{"settled: half a window without a change",
			pace{window: w, lastPub: ago(w), lastChange: ago(w / 2), changes: 5}, 0, 0},
		{"busy window of 8 fan-outs caps the wait",
			pace{window: w, lastPub: ago(150 * time.Millisecond), lastChange: ago(0), changes: 5, fanout: 20 * time.Millisecond}, 0, 10 * time.Millisecond},
		{"busy window is at least a window: past it, publish",
			pace{window: w, lastPub: ago(w), lastChange: ago(0), changes: 5, fanout: time.Millisecond}, 0, 0},
		{"busy window is at most ten windows",
			pace{window: w, lastPub: ago(10*w - time.Millisecond), lastChange: ago(0), changes: 5, fanout: time.Second}, 0, time.Millisecond},
		{"the last delivery counts as activity",
			pace{window: w, lastPub: ago(w), lastChange: ago(w), changes: 2, lastDelivery: ago(20 * time.Millisecond), fanout: w}, 0, 30 * time.Millisecond},
	} {
		if got := c.p.first(now); got != c.first {
			t.Errorf("%s: first %s, want %s", c.name, got, c.first)
		}
		if got := c.p.wait(now); got != c.wait {
			t.Errorf("%s: wait %s, want %s", c.name, got, c.wait)
		}
	}
}

// A change while a fan-out is still running may be the first of many (half
// a room dropping): it waits for the fan-out to finish and changes to pause.
func TestChangeDuringFanOutWaitsForIt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const window = 100 * time.Millisecond
		h, rec := newHub(t, HubOptions{Window: window})
		a, _, _ := h.Join("r")
		b, _, _ := h.Join("r")
		rec.mu.Lock()
		rec.onPublish = func(seq uint64) {
			go func() { // a fan-out whose deliveries run for 300ms
				for range 300 {
					time.Sleep(time.Millisecond)
					a.Delivered(seq)
				}
			}()
		}
		rec.mu.Unlock()
		time.Sleep(time.Second)
		start := time.Now()
		c, _, _ := h.Join("r") // published at once
		time.Sleep(20 * time.Millisecond)
		b.Leave() // during that fan-out
		time.Sleep(2 * time.Second)
		p := rec.published()
		last := p[len(p)-1]
		// Not at the window (+100ms) but once the fan-out ended (+300ms) and
		// the room settled (half a window later).
		if took := last.at.Sub(start); took < 290*time.Millisecond || took > 300*time.Millisecond+window/2 || last.count != 2 {
			t.Fatalf("publish after a change during a fan-out: %v at +%s, want 2 between +290ms and +350ms", last, took)
		}
		a.Leave()
		c.Leave()
	})
}

// A newcomer is sent a count that no publish carried; if the count returns
// to the published value before the next publish, it must still be told.
func TestNewcomerIsCorrectedWhenTheCountReturns(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, rec := newHub(t, HubOptions{Window: 100 * time.Millisecond})
		a, _, _ := h.Join("r")
		time.Sleep(time.Second)
		b, _, _ := h.Join("r") // published at once: 2
		synctest.Wait()
		c, first, _ := h.Join("r") // within the window: c is sent 3
		b.Leave()                  // back to 2 before the next publish
		time.Sleep(time.Second)
		p := rec.published()
		if first != 3 || p[len(p)-1].count != 2 || p[len(p)-1].u.Seq == p[1].u.Seq {
			t.Fatalf("newcomer got %d, publishes %v: want a new publish of 2", first, p)
		}
		a.Leave()
		c.Leave()
	})
}
