package main

import (
	"testing"
	"time"
)

// The node gives memory back once a wave of streams has passed, and not
// while it rises or is still falling, on a small dip, a partial drop, or
// more than once a minute.
func TestMemoryWatch(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	w := newMemoryWatch(0)
	step := func(streams int, d time.Duration) bool {
		now = now.Add(d)
		return w.observe(now, streams, streams)
	}
	for _, n := range []int{1000, 3000, 5000} {
		if step(n, 5*time.Second) {
			t.Fatal("released while the streams rose")
		}
	}
	if step(4500, 5*time.Second) || step(3000, 5*time.Second) || step(3000, 5*time.Second) {
		t.Fatal("released on a drop to more than half the peak")
	}
	if step(4900, 5*time.Second) || step(2600, 5*time.Second) || step(2600, 5*time.Second) {
		t.Fatal("released above half the peak")
	}
	if step(0, 5*time.Second) {
		t.Fatal("released while the streams were still falling")
	}
	if !step(0, 5*time.Second) {
		t.Fatal("not released once everyone left")
	}
	if step(1200, 5*time.Second) || step(0, 5*time.Second) || step(0, 5*time.Second) {
		t.Fatal("released twice within a minute")
	}
	if step(1500, time.Minute) || step(0, 5*time.Second) || !step(0, 5*time.Second) {
		t.Fatal("not released after a second wave a minute later")
	}
	if step(800, 2*time.Minute) || step(0, 5*time.Second) || step(0, 5*time.Second) {
		t.Fatal("released after a dip smaller than a wave")
	}
	// A wave that came and went between two observations: only the peak
	// since the last one shows it.
	now = now.Add(2 * time.Minute)
	if w.observe(now, 0, 3000) {
		t.Fatal("released at the first sight of a wave")
	}
	if !step(0, 5*time.Second) {
		t.Fatal("not released after a wave shorter than the interval")
	}
}
