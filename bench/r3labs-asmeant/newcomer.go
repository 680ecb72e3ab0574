package main

import (
	"fmt"
	"strconv"
	"time"
)

// newcomer measures (e): r3labs has no way to send to one subscriber, so a
// new stream's first value must be a publish to everyone that reaches it
// after it registered, or the replay log.
func (o *orchestrator) newcomer() error {
	const room, joins = 200, 50
	o.printf("\n(e) a newcomer's first value, in a quiet room of %d readers, %d newcomers one after another\n", room, joins)

	// 1. The count published from OnSubscribe, which r3labs runs after it
	// registered the subscriber (under a lock, so counts go out in order).
	c, err := o.start()
	if err != nil {
		return err
	}
	if err := o.firstValues(c, room, joins, "/countonsub", "/stream?stream=e", "count published from OnSubscribe"); err != nil {
		c.stop()
		return err
	}
	c.stop()

	// 2. The count kept outside r3labs (as the service's hub keeps it) and
	// published when the stream opens, before r3labs registered it.
	if c, err = o.start(); err != nil {
		return err
	}
	if err := o.firstValues(c, room, joins, "", "/stream?stream=e&pre=1", "count published before ServeHTTP"); err != nil {
		c.stop()
		return err
	}
	c.stop()

	if err := o.replay(room); err != nil {
		return err
	}
	return o.memberList()
}

func (o *orchestrator) firstValues(c *child, room, joins int, setup, path, name string) error {
	if setup != "" {
		if _, err := c.ctl(setup); err != nil {
			return err
		}
	}
	rs, err := o.room(c, "e", room)
	if err != nil {
		return err
	}
	defer func() { closeAll(rs) }()    // the newcomers too
	time.Sleep(200 * time.Millisecond) // let the room's own counts settle before the first newcomer
	var waits []time.Duration
	missed, wrong := 0, 0
	for i := range joins {
		r, err := o.d.open(c.addr, path)
		if err != nil {
			return err
		}
		rs = append(rs, r)
		got, at := "", time.Time{}
		for end := time.Now().Add(time.Second); time.Now().Before(end); time.Sleep(time.Millisecond) {
			if got, at = r.firstEvent(); !at.IsZero() {
				break
			}
		}
		if at.IsZero() {
			missed++
			continue
		}
		waits = append(waits, at.Sub(r.opened))
		want := room + i + 1
		if setup == "" {
			want = i + 1 // only newcomers count here
		}
		if got != strconv.Itoa(want) {
			wrong++
		}
	}
	when := ""
	if len(waits) > 0 {
		when = fmt.Sprintf(" (p50 %s, max %s after the request)", ms(percentile(waits, 0.5)), ms(percentile(waits, 1)))
	}
	o.printf("  %-34s got a first value: %3d/%d%s; none within 1 s: %d; a wrong first value: %d\n",
		name, len(waits), joins, when, missed, wrong)
	return nil
}

// replay measures what the library offers newcomers instead: AutoReplay,
// whose log only grows and is replayed from the stream's goroutine.
func (o *orchestrator) replay(room int) error {
	const logged = 20000
	c, err := o.start("-replay")
	if err != nil {
		return err
	}
	defer c.stop()
	if _, err := c.ctl("/create?stream=e"); err != nil {
		return err
	}
	before, err := c.stats("/stats?gc=1")
	if err != nil {
		return err
	}
	if _, err := c.ctl(fmt.Sprintf("/publish?stream=e&data=7&count=%d", logged)); err != nil {
		return err
	}
	after, err := c.stats("/stats?gc=1")
	if err != nil {
		return err
	}
	rs, err := o.d.openMany(c.addr, "/stream?stream=e", room)
	if err != nil {
		return err
	}
	defer closeAll(rs)
	// Each reader gets the whole log on joining; wait until they have it.
	if _, ok := awaitReaders(rs, logged-1, 60*time.Second); !ok {
		return fmt.Errorf("readers did not get the replayed log")
	}
	var bytes int64
	for _, r := range rs {
		bytes += r.bytes.Load()
	}
	// A slow newcomer: it connects and never reads; the replay to it runs
	// in the stream's goroutine, so the next count to everyone else waits.
	sc, err := o.d.stalled(c.addr, "/stream?stream=e")
	if err != nil {
		return err
	}
	defer sc.Close()
	time.Sleep(200 * time.Millisecond)
	t := time.Now()
	if _, err := c.ctl("/publish?stream=e&data=next"); err != nil {
		return err
	}
	d, ok := awaitReaders(rs, logged, 5*time.Second)
	next := ms(d)
	if !ok {
		next = fmt.Sprintf("not within %.0f s", time.Since(t).Seconds())
	}
	o.printf("  AutoReplay on, %d counts logged: log %.0f KiB of heap; each newcomer is sent %.0f KiB;\n", logged,
		float64(after.HeapStack-before.HeapStack)/1024, float64(bytes)/float64(len(rs))/1024)
	o.printf("    with one newcomer that does not read, the next count to the other %d: %s\n", len(rs), next)
	return nil
}

// memberList measures the members stream's newcomer: its first member list
// can only be a publish of the whole list (at most the service's default
// --members-cap, 100) to every signed-in stream.
func (o *orchestrator) memberList() error {
	for _, n := range []int{100, 1000} {
		if err := o.memberListOnce(n, min(n, 100)); err != nil {
			return err
		}
	}
	return nil
}

func (o *orchestrator) memberListOnce(n, listed int) error {
	c, err := o.start()
	if err != nil {
		return err
	}
	defer c.stop()
	rs, err := o.room(c, "m.members", n)
	if err != nil {
		return err
	}
	defer closeAll(rs)
	if _, err := c.ctl("/mark"); err != nil {
		return err
	}
	if _, err := c.ctl(fmt.Sprintf("/publish?stream=m.members&members=%d", listed)); err != nil {
		return err
	}
	d, ok := awaitReaders(rs, 1, 30*time.Second)
	st, err := c.stats("/stats?stream=m.members")
	if err != nil {
		return err
	}
	var bytes int64
	for _, r := range rs {
		bytes += r.bytes.Load()
	}
	o.printf("  members stream, %4d signed in: one newcomer's list of %d sent to all: %.1f MiB written, all have it after %s (ok=%v), server CPU %.3f s to the last\n",
		n, listed, float64(bytes)/(1<<20), ms(d), ok, st.CPUSinceMrk)
	return nil
}
