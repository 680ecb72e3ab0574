package main

import (
	"fmt"
	"time"
)

// stall measures (a): one client that never reads, in a room of n readers.
// Its socket is filled first with padded events (r3labs cannot send to one
// subscriber, so every reader gets them too) until its handler's flush
// blocks; then the room publishes a count every window, and we watch the
// longest gap between counts at the other readers.
func (o *orchestrator) stall(n int) error {
	o.printf("\n(a) stalled reader: %d readers + 1 client that never reads (SO_RCVBUF 4096, MSS 1448), counts every window for 12 s\n", n)
	o.printf("%-9s %-7s %9s %12s %14s %14s %12s\n", "deadline", "window", "fill", "stall from", "longest gap", "still stalled", "max Publish")
	for _, dl := range []time.Duration{0, 4 * time.Second} {
		for _, every := range []time.Duration{100 * time.Millisecond, 25 * time.Millisecond} {
			if err := o.stallOnce(n, dl, every); err != nil {
				return err
			}
		}
	}
	return nil
}

const padBytes = 32 << 10

func (o *orchestrator) stallOnce(n int, dl, every time.Duration) error {
	c, err := o.start(fmt.Sprintf("-deadline=%s", dl))
	if err != nil {
		return err
	}
	defer c.stop()
	rs, err := o.room(c, "a", n)
	if err != nil {
		return err
	}
	defer closeAll(rs)
	sc, err := o.d.stalled(c.addr, "/stream?stream=a&stalled=1")
	if err != nil {
		return err
	}
	defer sc.Close()
	if _, err := c.await(10*time.Second, func(s stats) bool { return s.Subs >= int64(n)+1 }); err != nil {
		return fmt.Errorf("stalled client subscribed: %w", err)
	}

	// Fill the stalled client's socket until its handler blocks in a flush.
	fill := 0
	for blocked := false; !blocked; {
		fill++
		if fill > 400 {
			return fmt.Errorf("stalled stream did not block after %d KiB", fill*padBytes>>10)
		}
		if _, err := c.ctl(fmt.Sprintf("/publish?stream=a&data=0&pad=%d", padBytes)); err != nil {
			return err
		}
		if _, ok := awaitReaders(rs, int64(fill), 30*time.Second); !ok {
			return fmt.Errorf("readers did not get fill event %d", fill)
		}
		st, err := c.stats("/stats")
		if err != nil {
			return err
		}
		// One write in progress for over a second is blocked on a full
		// socket, not merely slow on a busy machine.
		for end := time.Now().Add(1200 * time.Millisecond); st.StalledMs > 0 && !blocked && time.Now().Before(end); {
			time.Sleep(100 * time.Millisecond)
			if st, err = c.stats("/stats"); err != nil {
				return err
			}
			blocked = st.StalledMs > 1000
		}
	}

	const span = 12 * time.Second
	t0 := time.Now()
	if _, err := c.ctl(fmt.Sprintf("/tick?stream=a&every=%s&for=%s", every, span)); err != nil {
		return err
	}
	last, lastChange := minLastID(rs), t0
	var longest time.Duration
	stallFrom := time.Duration(-1)
	for time.Since(t0) < span+every {
		time.Sleep(2 * time.Millisecond)
		if m := minLastID(rs); m != last {
			now := time.Now()
			if gap := now.Sub(lastChange); gap > longest {
				longest = gap
				if gap > 10*every {
					stallFrom = lastChange.Sub(t0)
				}
			}
			last, lastChange = m, now
		}
	}
	still := time.Since(lastChange)
	stillStalled := "no"
	if still > 10*every {
		if still > longest {
			longest, stallFrom = still, lastChange.Sub(t0)
		}
		stillStalled = fmt.Sprintf("yes, %.1f s", still.Seconds())
	}
	st, err := c.stats("/stats?stream=a")
	if err != nil {
		return err
	}
	from := "never"
	if stallFrom >= 0 {
		from = fmt.Sprintf("%.2f s", stallFrom.Seconds())
	}
	o.printf("%-9s %-7s %6d KiB %12s %14s %14s %12s\n", dl, every, fill*padBytes>>10, from,
		fmt.Sprintf("%.2f s", longest.Seconds()), stillStalled, fmt.Sprintf("%.2f ms", st.MaxPublish))
	if stillStalled == "no" {
		return nil
	}
	// While the fan-out is stuck, a newcomer cannot even register: r3labs
	// sends it to the stream's goroutine before it writes the headers.
	type opened struct {
		r   *reader
		err error
	}
	newcomer := make(chan opened, 1)
	go func() {
		r, err := o.d.open(c.addr, "/stream?stream=a")
		newcomer <- opened{r, err}
	}()
	waited := "still waiting after 2 s"
	select {
	case nc := <-newcomer:
		waited = fmt.Sprintf("answered at once (err=%v)", nc.err)
		if nc.r != nil {
			nc.r.conn.Close()
		}
	case <-time.After(2 * time.Second):
	}
	tc := time.Now()
	sc.Close()
	if _, err := c.ctl("/publish?stream=a&data=1"); err != nil {
		return err
	}
	returned := "not within 30 s"
	if _, err := c.await(30*time.Second, func(s stats) bool { return s.Returned >= 1 }); err == nil {
		returned = ms(time.Since(tc))
	}
	_, ok := awaitReaders(rs, int64(st.Seq)+1, 30*time.Second)
	o.printf("          a newcomer's request during the stall: %s; the stalled client closes: its handler returns %s later, the others get the next count %s later (ok=%v)\n",
		waited, returned, ms(time.Since(tc)), ok)
	if nc := <-newcomer; nc.r != nil {
		nc.r.conn.Close()
	}
	return nil
}
