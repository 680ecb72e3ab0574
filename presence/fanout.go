package presence

import (
	"sync/atomic"
	"time"
)

// fanoutClock measures how long a room's publishes take to reach their last
// stream, from the deliveries the streams report (Stream.Delivered). The
// coalescing rule reads it: a room whose fan-outs are slow publishes less
// often while busy. Streams write it from their own goroutines, without
// the hub's lock, hence atomics throughout.
type fanoutClock struct {
	lastDelivery atomic.Int64 // unix nanos of the latest delivery to a stream
	// The last few publishes, by seq % len: their seq, start and latest
	// delivery (unix nanos), so that a delivery that comes after the next
	// publish started still counts toward its own publish's fan-out.
	recent [4]struct{ seq, start, last atomic.Int64 }
}

// started records that publish seq began at now.
func (c *fanoutClock) started(seq uint64, now time.Time) {
	p := &c.recent[seq%uint64(len(c.recent))]
	p.seq.Store(-1) // no delivery may count while the slot is rewritten
	p.start.Store(now.UnixNano())
	p.last.Store(0)
	p.seq.Store(int64(seq))
}

// delivered records that publish seq reached one more stream now.
func (c *fanoutClock) delivered(seq uint64, now int64) {
	c.lastDelivery.Store(now)
	p := &c.recent[seq%uint64(len(c.recent))]
	if p.seq.Load() != int64(seq) {
		return // too old to matter
	}
	p.last.Store(now) // deliveries of one publish come about in order: no need for a max
}

// last returns when the latest delivery was (the Unix epoch if none).
func (c *fanoutClock) last() time.Time { return time.Unix(0, c.lastDelivery.Load()) }

// took is how long the publishes up to seq took to reach their last
// stream: the longer of the latest one (perhaps still going) and the one
// before.
func (c *fanoutClock) took(seq uint64) time.Duration {
	n := uint64(len(c.recent))
	took := func(i uint64) int64 {
		p := &c.recent[i%n]
		return max(0, p.last.Load()-p.start.Load())
	}
	return time.Duration(max(took(seq), took(seq+n-1)))
}

// Delivered tells the hub that the count event of publish seq (an
// Update's Seq) reached this stream's socket. The hub learns from it how
// long a fan-out takes.
func (s *Stream) Delivered(seq uint64) {
	s.room.clock.delivered(seq, time.Now().UnixNano())
}
