package e2e

import (
	"fmt"
	"testing"
	"time"
)

// After a wave of clients leaves, empty rooms are gone and the service's
// heap and goroutines are back at their idle level, read from its own
// /metrics: a wave (3,000 streams here, more than the 1,000 the service's
// own release waits for) leaves nothing behind. The heap gets there by the
// service's release (memory.go: a collection, then debug.FreeOSMemory, at
// most once a minute) or by a collection the scrapes themselves cause,
// whichever comes first; what the release gives back to the system (RSS)
// is measured by the soak benchmark, and when it happens by memory_test.go.
//
// The idle level is the one after a first wave: the Go runtime keeps every
// goroutine descriptor it ever made (about 450 bytes each, for reuse), so a
// process that has held 3,000 streams never goes back to its cold heap.
// A second wave of the same size must leave at most 10% of its heap
// behind. The runtime keeps a few hundred KB more after a second wave on
// a loaded machine (more goroutines at once, more descriptors), which a
// wave of 1,500 streams (about 3 MB of heap) did not leave room for; and
// /metrics is read without gzip, since its pooled gzip writer (about 800
// KB) is there or not at each collection.
func TestMemoryReturnsToIdleAfterClientsLeave(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	g0 := metric(t, s, "go_goroutines")
	wave(t, s, g0)
	// The idle level: the lowest heap seen in the 20 s after the first
	// wave left, which holds the service's release (within two looks, 5 s
	// apart, of the streams' fall).
	heap0 := metric(t, s, "go_memstats_heap_alloc_bytes")
	for start := time.Now(); time.Since(start) < 20*time.Second; time.Sleep(100 * time.Millisecond) {
		heap0 = min(heap0, metric(t, s, "go_memstats_heap_alloc_bytes"))
	}
	heapBusy := wave(t, s, g0)
	// The service looks every 5 s and releases once the streams stopped
	// falling and a minute after its last release.
	heap1 := waitRelease(t, s, heapBusy, heap0, 90*time.Second)
	t.Logf("heap after a first wave %.0f KiB, with 3,000 streams %.0f KiB, %.0f KiB after all left",
		heap0/1024, heapBusy/1024, heap1/1024)
}

// wave opens 3,000 streams in 600 rooms, closes them all, and waits for
// every stream, room and goroutine (back to g0) to go. It returns the heap
// while they were open.
func wave(t *testing.T, s *testServer, g0 float64) (heapBusy float64) {
	t.Helper()
	const rooms, perRoom = 600, 5
	var clients []*sseClient
	for i := range rooms * perRoom {
		c, err := dialErr(s.Addr, fmt.Sprintf("/rooms/r%d/events", i%rooms))
		if err != nil {
			t.Fatal(err)
		}
		clients = append(clients, c)
	}
	for _, c := range clients {
		c.waitFor(t, 10*time.Second, "a count", func() bool { return c.Last() > 0 })
	}
	if n := metric(t, s, "presence_rooms"); n != rooms {
		t.Fatalf("presence_rooms %v, want %d", n, rooms)
	}
	heapBusy = metric(t, s, "go_memstats_heap_alloc_bytes")
	for _, c := range clients {
		c.Close()
		<-c.done
	}
	waitUntil(t, 10*time.Second, "every stream and room to go", func() bool {
		return metric(t, s, "presence_streams_open") == 0 && metric(t, s, "presence_rooms") == 0
	})
	waitUntil(t, 10*time.Second, "goroutines back to idle", func() bool {
		return metric(t, s, "go_goroutines") <= g0
	})
	return heapBusy
}

// waitRelease waits, up to within, for the heap to fall within 10% of the
// way from idle to busy, and returns it. Each scrape of /metrics makes
// garbage of its own, so they are spaced.
func waitRelease(t *testing.T, s *testServer, busy, idle float64, within time.Duration) float64 {
	t.Helper()
	start := time.Now()
	lowest := busy
	for {
		heap := metric(t, s, "go_memstats_heap_alloc_bytes")
		if heap <= idle+(busy-idle)/10 {
			return heap
		}
		lowest = min(lowest, heap)
		if time.Since(start) > within {
			t.Fatalf("heap %.0f KiB %v after all left, %.0f KiB at the lowest: idle was %.0f KiB, busy %.0f KiB (collections %v, goroutines %v)",
				heap/1024, within, lowest/1024, idle/1024, busy/1024, metric(t, s, "go_gc_duration_seconds_count"), metric(t, s, "go_goroutines"))
		}
		time.Sleep(100 * time.Millisecond)
	}
}
