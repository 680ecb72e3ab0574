package main

import (
	"context"
	"runtime"
	"runtime/debug"
	"time"
)

// Memory is given back to the system after a wave of streams has passed.
// Go's runtime returns freed heap to the system only slowly (its
// background scavenger, and a forced GC every two minutes): after a peak of
// thousands of streams a quiet node kept several times its idle memory for
// many minutes (the soak benchmark measured 47 MB, against 16 MB at start,
// six minutes after everyone left). A presence service's load comes in
// waves (an event, a working day), so when most of a peak has left, the
// node collects and returns what is free at once.
const (
	memoryCheckEvery = 5 * time.Second
	// A release needs the open streams to have fallen by at least this
	// many, and to half the peak or less, since the last release: a
	// small or partial dip is left to the runtime.
	memoryReleaseDrop = 1000
	// At most one release per this: a forced collection costs a few
	// milliseconds of CPU per thousand open streams.
	memoryReleaseGap = time.Minute
)

// releaseMemoryWhenIdle watches the number of open streams at every tick
// until ctx ends, and calls release (debug.FreeOSMemory) when a wave has
// passed (see memoryWatch).
// streams returns the streams open now and the most open at once since
// its last call (presence.Hub's Stats and PeakStreams).
func releaseMemoryWhenIdle(ctx context.Context, streams func() (open, peak int), tick <-chan time.Time, release func()) {
	w := newMemoryWatch(0)
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick:
			if n, peak := streams(); w.observe(now, n, peak) {
				release()
			}
		}
	}
}

// memoryWatch decides when a wave of streams has passed: the streams fell
// by at least memoryReleaseDrop and to half their peak since the last
// release, which was at least memoryReleaseGap ago, and have stopped
// falling (a release in the middle of a mass leave would find most of the
// memory still in use, and the next one would be a minute away).
type memoryWatch struct {
	peak, prev int
	last       time.Time
}

func newMemoryWatch(n int) memoryWatch { return memoryWatch{peak: n, prev: n} }

// observe takes the number of open streams at now, and the most open at
// once since the last observation, and reports whether to release memory.
func (w *memoryWatch) observe(now time.Time, n, peak int) bool {
	w.peak = max(w.peak, n, peak)
	// Still moving: the streams fell since the last observation, or
	// came and went in between.
	falling := max(w.prev, peak)-n >= memoryReleaseDrop/10
	w.prev = n
	if falling || w.peak-n < memoryReleaseDrop || n > w.peak/2 || now.Sub(w.last) < memoryReleaseGap {
		return false
	}
	w.peak, w.last = n, now
	return true
}

// releaseMemory collects twice, since a sync.Pool keeps what it held
// through one collection (net/http's and TLS's buffers of every connection
// of the wave: 60 MB after 3,000 streams), then returns what is free.
func releaseMemory() {
	runtime.GC()
	debug.FreeOSMemory()
}
