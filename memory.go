package main

import (
	"context"
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

// releaseMemoryWhenIdle watches the number of open streams until ctx ends,
// and calls release (debug.FreeOSMemory) when a wave has passed: the
// streams fell by at least memoryReleaseDrop and to half their peak since
// the last release, which was at least memoryReleaseGap ago.
func releaseMemoryWhenIdle(ctx context.Context, streams func() int, tick <-chan time.Time, release func()) {
	peak, last := streams(), time.Time{}
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick:
			n := streams()
			peak = max(peak, n)
			if peak-n >= memoryReleaseDrop && n <= peak/2 && now.Sub(last) >= memoryReleaseGap {
				release()
				peak, last = n, now
			}
		}
	}
}
