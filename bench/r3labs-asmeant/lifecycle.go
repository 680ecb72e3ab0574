package main

import (
	"fmt"
	"slices"
	"sync"
	"time"
)

// callbacks measures (c): streams that open and close at once, 32 at a
// time. r3labs runs OnSubscribe and OnUnsubscribe each in a new goroutine;
// the server counts how often a subscriber's unsubscribe ran before its
// subscribe, and the lowest value a count kept by the callbacks reached.
func (o *orchestrator) callbacks() error {
	const cycles = 3000
	o.printf("\n(c) OnSubscribe/OnUnsubscribe order: %d streams that open and close at once, 32 at a time\n", cycles)
	for _, v := range []struct {
		name  string
		cycle func(addr string) error
	}{
		{"close after the response headers", func(addr string) error {
			r, err := o.d.open(addr, "/stream?stream=c")
			if err != nil {
				return err
			}
			return r.conn.Close()
		}},
		{"close right after the request", func(addr string) error {
			conn, err := o.d.dial(addr, 0)
			if err != nil {
				return err
			}
			_, err = conn.Write(request("/stream?stream=c"))
			conn.Close()
			return err
		}},
	} {
		c, err := o.start()
		if err != nil {
			return err
		}
		if _, err := c.ctl("/create?stream=c"); err != nil {
			c.stop()
			return err
		}
		var wg sync.WaitGroup
		errs := make(chan error, cycles)
		for w := range 32 {
			wg.Go(func() {
				for i := w; i < cycles; i += 32 {
					if err := v.cycle(c.addr); err != nil {
						errs <- err
					}
				}
			})
		}
		wg.Wait()
		st, err := c.await(30*time.Second, func(s stats) bool { return s.Subs == s.Unsubs && s.Returned == s.Subs })
		c.stop()
		if err != nil {
			return fmt.Errorf("settle: %w (%+v)", err, st)
		}
		o.printf("  %-34s subscribes %5d, unsubscribe before its subscribe %4d (%.1f%%), callback count went down to %d, failed cycles %d\n",
			v.name, st.Subs, st.Inversions, 100*float64(st.Inversions)/float64(max(st.Subs, 1)), st.NaiveMin, len(errs))
	}
	return nil
}

// shutdown measures (d): RemoveStream and Close with subscribers connected,
// and net/http's graceful Shutdown in between.
func (o *orchestrator) shutdown() error {
	const per = 100
	o.printf("\n(d) shutdown with subscribers connected (%d on d1, %d on d2, %d on d2's members stream)\n", per, per, per/2)
	c, err := o.start()
	if err != nil {
		return err
	}
	defer c.stop()
	for _, s := range []string{"d1", "d2", "d2.members"} {
		if _, err := c.ctl("/create?stream=" + s); err != nil {
			return err
		}
	}
	g0, err := c.stats("/stats")
	if err != nil {
		return err
	}
	var all []*reader
	open := func(stream string, n int) ([]*reader, error) {
		rs, err := o.d.openMany(c.addr, "/stream?stream="+stream, n)
		all = append(all, rs...)
		return rs, err
	}
	d1, err := open("d1", per)
	if err != nil {
		return err
	}
	d2, err := open("d2", per)
	if err != nil {
		return err
	}
	d2m, err := open("d2.members", per/2)
	if err != nil {
		return err
	}
	defer closeAll(all)
	g1, err := c.await(10*time.Second, func(s stats) bool { return s.Subs >= int64(len(all)) })
	if err != nil {
		return err
	}
	o.printf("  goroutines: %d before, %d with %d streams\n", g0.Goroutines, g1.Goroutines, len(all))

	if _, err := c.ctl("/remove?stream=d1"); err != nil {
		return err
	}
	ended := ends(d1, 3*time.Second)
	st, err := c.stats("/stats")
	if err != nil {
		return err
	}
	again, err := o.d.open(c.addr, "/stream?stream=d1")
	if again != nil {
		again.conn.Close()
	}
	o.printf("  RemoveStream(d1): %d/%d streams ended, handlers returned %d, OnUnsubscribe %d, goroutines %d; reconnecting to d1: %v\n",
		ended, per, st.Returned, st.Unsubs, st.Goroutines, err)

	res, err := c.ctl("/shutdown?timeout=2s")
	if err != nil {
		return err
	}
	st, err = c.stats("/stats")
	if err != nil {
		return err
	}
	o.printf("  http.Server.Shutdown (2 s timeout) with d2 open: %s; handlers returned %d (+1: the refused reconnect)\n", res, st.Returned-1)

	if _, err := c.ctl("/close"); err != nil {
		return err
	}
	ended = ends(append(slices.Clone(d2), d2m...), 3*time.Second)
	st, err = c.stats("/stats")
	if err != nil {
		return err
	}
	o.printf("  Close(): %d/%d streams ended, handlers returned %d, OnUnsubscribe %d, goroutines %d\n",
		ended, len(d2)+len(d2m), st.Returned-1, st.Unsubs, st.Goroutines)
	closeAll(all)
	if _, err := c.await(2*time.Second, func(s stats) bool { return s.Goroutines <= g0.Goroutines }); err == nil {
		o.printf("  every client gone: goroutines back to %d\n", g0.Goroutines)
		return nil
	}
	if st, err = c.stats("/stats?stacks=1"); err != nil {
		return err
	}
	o.printf("  every client gone, 2 s later: goroutines %d (%d more than the %d before; %d streams were served), %d of them blocked in r3labs's Subscriber.close; OnUnsubscribe %d\n",
		st.Goroutines, st.Goroutines-g0.Goroutines, g0.Goroutines, len(all), st.InClose, st.Unsubs)
	return nil
}

// ends counts the readers whose stream ended within the timeout.
func ends(rs []*reader, timeout time.Duration) int {
	end := time.Now().Add(timeout)
	n := 0
	for _, r := range rs {
		t := time.NewTimer(max(time.Until(end), 0))
		select {
		case <-r.done:
			n++
		case <-t.C:
		}
		t.Stop()
	}
	return n
}
