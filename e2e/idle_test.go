package e2e

import (
	"fmt"
	"testing"
	"time"
)

// After a wave of clients leaves, empty rooms are gone and the service's
// heap and goroutines are back at their idle level, read from its own
// /metrics: the service collects and returns memory by itself once a wave
// has passed (1,500 streams here, more than the 1,000 it waits for), and
// nothing else would collect a quiet process for two minutes.
func TestMemoryReturnsToIdleAfterClientsLeave(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	heap0, g0 := metric(t, s, "go_memstats_heap_alloc_bytes"), metric(t, s, "go_goroutines")

	const rooms, perRoom = 300, 5
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
	heapBusy := metric(t, s, "go_memstats_heap_alloc_bytes")
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
	// The service looks every 5 s and releases once the streams stopped
	// falling: within two looks, and a margin. Each scrape of /metrics
	// makes garbage of its own, so they are spaced.
	var heap1 float64
	start := time.Now()
	for heap1 = heapBusy; heap1 > heap0+(heapBusy-heap0)/10; heap1 = metric(t, s, "go_memstats_heap_alloc_bytes") {
		if time.Since(start) > 30*time.Second {
			t.Fatalf("heap %.0f KiB 30 s after all left: idle was %.0f KiB, busy %.0f KiB", heap1/1024, heap0/1024, heapBusy/1024)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("heap idle %.0f KiB, with %d streams %.0f KiB, %.0f KiB %v after all left",
		heap0/1024, len(clients), heapBusy/1024, heap1/1024, time.Since(start).Round(100*time.Millisecond))
}
