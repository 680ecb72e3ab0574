package handlers

import (
	"sync"

	"github.com/presence/presence/presence"
)

// A detached stream that watches rooms has no goroutine waiting on its
// watch: the watch calls woken (presence.WatchOptions.Woken) when it has
// news, which queues the stream, at most once, for the wake workers. A
// worker drains the watch and writes what it holds with the same write
// that never waits as the feeds' (detach_write.go). The workers are
// goroutines that exist while the queue is not empty, at most one per CPU.

// watchState is a detached stream's watch.
type watchState struct {
	wt    *presence.Watch
	alone bool   // GET /watch: a stream of its own, with the watch's heartbeats
	hb    uint64 // the watch's heartbeats the stream was sent, if alone
}

// wakeQueue is the detached streams whose watch has news, in order.
type wakeQueue struct {
	mu      sync.Mutex
	queue   []*detached // at most one entry per stream (detached.queued)
	head    int
	workers int
}

// woken queues d for a wake worker, unless it is queued already. It never
// blocks: the hub calls it while it publishes.
func (d *detached) woken() {
	if d.queued.Swap(true) {
		return
	}
	b := d.b
	q := &b.wakes
	q.mu.Lock()
	q.queue = append(q.queue, d)
	spawn := q.workers < b.procs
	if spawn {
		q.workers++
	}
	q.mu.Unlock()
	if spawn {
		go b.wakeWorker()
	}
}

// wakeWorker writes to queued streams until the queue is empty.
func (b *Broadcaster) wakeWorker() {
	q := &b.wakes
	w := newWriteTry()
	buf := b.frames.Get().(*[]byte)
	defer b.frames.Put(buf)
	for {
		q.mu.Lock()
		if q.head == len(q.queue) {
			clear(q.queue)
			q.queue, q.head = q.queue[:0], 0
			if cap(q.queue) > 4096 {
				q.queue = nil // a burst is over: let its slice go
			}
			q.workers--
			q.mu.Unlock()
			return
		}
		d := q.queue[q.head]
		q.queue[q.head] = nil
		q.head++
		if q.head > 1024 && q.head > len(q.queue)/2 {
			// Wakes keep coming: move what is left to the front, so
			// that the slice holds what is queued, not all that was.
			q.queue = q.queue[:copy(q.queue, q.queue[q.head:])]
			q.head = 0
		}
		q.mu.Unlock()
		d.queued.Store(false) // news from here on queues it again
		d.mu.Lock()
		*buf = d.writeWatch((*buf)[:0], w)
		d.mu.Unlock()
	}
}

// writeWatch writes what d's watch has, under d.mu, framing in scratch,
// which it returns (grown) for the next; busy or not yet detached, it is
// owed instead.
func (d *detached) writeWatch(scratch []byte, w *writeTry) []byte {
	switch {
	case d.closed:
		return scratch
	case d.busy:
		d.watchOwe = true
		return scratch
	}
	p, n := d.appendWatch(scratch[:0])
	if len(p) > 0 {
		d.send(p, 0, w)
	}
	if !d.closed {
		d.b.countDeliveries(n)
	}
	return p
}

// appendWatch appends, under d.mu, what d's watch has for it since the
// last time (see Broadcaster.writeWatched) and, for GET /watch, a
// heartbeat if one came. n is the rooms' events appended: deliveries, once
// written.
func (d *detached) appendWatch(p []byte) (_ []byte, n int) {
	d.watchOwe = false
	p, n = drainWatch(p, d.watch.wt)
	if d.watch.alone {
		if hb := d.watch.wt.Heartbeats(); hb != d.watch.hb {
			d.watch.hb = hb
			p = append(p, heartbeatLine...)
		}
	}
	return p, n
}

// countDeliveries counts n events written to streams.
func (b *Broadcaster) countDeliveries(n int) {
	if n > 0 {
		b.metrics.deliveries.Add(float64(n))
	}
}
