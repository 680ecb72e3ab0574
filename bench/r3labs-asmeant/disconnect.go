package main

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"time"
)

// disconnect measures (b), and (f) on the way: n streams in one room, then
// every other one closes at once. The floor is the same server with a bare
// handler that waits for the client to go, so the difference is r3labs's.
func (o *orchestrator) disconnect(ns []int) error {
	o.printf("\n(b) mass disconnect: n streams in one room, every other one closes at once; (f) memory per stream\n")
	o.printf("%-7s %6s %10s %12s %12s %16s %14s %12s\n", "engine", "n", "open s", "dereg wall", "dereg CPU", "next count", "heap+stack/st", "goroutines/st")
	for _, n := range ns {
		for _, kind := range []string{"floor", "r3labs"} {
			if err := o.disconnectOnce(kind, n); err != nil {
				return fmt.Errorf("%s %d: %w", kind, n, err)
			}
		}
		o.printf("        the scan and copy alone (r3labs's getSubIndex + removeSubscriber, same order, no I/O): %s for %d removals\n",
			ms(scanCost(n)), n/2)
	}
	return nil
}

func (o *orchestrator) disconnectOnce(kind string, n int) error {
	c, err := o.start()
	if err != nil {
		return err
	}
	defer c.stop()
	path, floor := "/floor", "&floor=1"
	if kind == "r3labs" {
		path, floor = "/stream?stream=b", ""
		if _, err := c.ctl("/create?stream=b"); err != nil {
			return err
		}
	}
	before, err := c.stats("/stats?gc=1")
	if err != nil {
		return err
	}
	t := time.Now()
	rs, err := o.d.openMany(c.addr, path, n)
	if err != nil {
		return err
	}
	defer closeAll(rs)
	if _, err := c.await(60*time.Second, func(s stats) bool { return s.Subs >= int64(n) || s.FloorOpen >= int64(n) }); err != nil {
		return fmt.Errorf("all open: %w", err)
	}
	open := time.Since(t)
	after, err := c.stats("/stats?gc=1")
	if err != nil {
		return err
	}

	var gone, stay []*reader
	for i, r := range rs {
		if i%2 == 0 {
			gone = append(gone, r)
		} else {
			stay = append(stay, r)
		}
	}
	if _, err := c.ctl("/mark"); err != nil {
		return err
	}
	var wg sync.WaitGroup
	for part := range 8 {
		wg.Go(func() {
			for i := part; i < len(gone); i += 8 {
				gone[i].conn.Close()
			}
		})
	}
	wg.Wait()
	next := make(chan string, 1)
	next <- "-"
	if kind == "r3labs" {
		// The next count, published as the drop starts: when do those who
		// stay get it?
		<-next
		published := time.Now()
		if _, err := c.ctl("/publish?stream=b&data=1"); err != nil {
			return err
		}
		go func() {
			if _, ok := awaitReaders(stay, 1, 30*time.Second); !ok {
				next <- "not in 30 s"
				return
			}
			next <- ms(time.Since(published))
		}()
	}
	st, err := c.stats(fmt.Sprintf("/wait?n=%d%s", len(gone), floor))
	if err != nil {
		return err
	}
	o.printf("%-7s %6d %10.2f %12s %12s %16s %10.2f KiB %14.2f\n", kind, n, open.Seconds(),
		fmt.Sprintf("%.3f s", st.WallSince), fmt.Sprintf("%.3f s", st.CPUSinceMrk), <-next,
		float64(after.HeapStack-before.HeapStack)/float64(n)/1024, float64(after.Goroutines-before.Goroutines)/float64(n))
	return nil
}

// scanCost runs r3labs's deregistration on a plain slice: find the
// subscriber by a linear scan, then remove it with append, which copies the
// tail. Every other subscriber leaves, in a shuffled order.
func scanCost(n int) time.Duration {
	type sub struct{ _ [8]byte }
	subs := make([]*sub, n)
	for i := range subs {
		subs[i] = &sub{}
	}
	var leave []*sub
	for i := 0; i < n; i += 2 {
		leave = append(leave, subs[i])
	}
	rand.Shuffle(len(leave), func(i, j int) { leave[i], leave[j] = leave[j], leave[i] })
	t := time.Now()
	for _, l := range leave {
		for i := range subs {
			if subs[i] == l {
				subs = append(subs[:i], subs[i+1:]...)
				break
			}
		}
	}
	return time.Since(t)
}
