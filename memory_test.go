package main

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

// The node gives memory back once a wave of streams has passed, and not
// on a small dip, a partial drop, or more than once a minute.
func TestReleaseMemoryWhenIdle(t *testing.T) {
	var open atomic.Int64
	released := make(chan struct{}, 10)
	tick := make(chan time.Time)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		releaseMemoryWhenIdle(ctx, func() int { return int(open.Load()) }, tick, func() { released <- struct{}{} })
	}()
	defer func() { cancel(); <-done }()

	now := time.Unix(1_000_000, 0)
	step := func(streams int, d time.Duration) bool {
		open.Store(int64(streams))
		now = now.Add(d)
		tick <- now
		tick <- now // the second send waits until the first was handled
		select {
		case <-released:
			return true
		default:
			return false
		}
	}
	if step(5000, time.Second) {
		t.Fatal("released while the streams rose")
	}
	if step(4500, time.Second) || step(3000, time.Second) {
		t.Fatal("released on a drop to more than half the peak")
	}
	if step(4900, time.Second) || step(2600, time.Second) {
		t.Fatal("released above half the peak")
	}
	if !step(0, time.Second) {
		t.Fatal("not released once everyone left")
	}
	if step(1200, time.Second) || step(0, time.Second) {
		t.Fatal("released twice within a minute")
	}
	if step(1500, time.Minute) || !step(0, time.Second) {
		// 1,500 then 0 a minute later: a drop of 1,500, a wave.
		t.Fatal("not released after a second wave a minute later")
	}
	if step(800, 2*time.Minute) || step(0, time.Second) {
		t.Fatal("released after a dip smaller than a wave")
	}
}
