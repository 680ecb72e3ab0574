package main

import (
	"fmt"
	"runtime"
	"testing"
	"time"
)

// After every client leaves, empty rooms are gone and memory and goroutines
// are back at their idle level. Not parallel: it reads this process's heap.
func TestMemoryReturnsToIdleAfterClientsLeave(t *testing.T) {
	s := startServer(t)
	idle := func() (uint64, int) {
		runtime.GC() // twice: sync.Pool keeps what it held for one cycle more
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc, runtime.NumGoroutine()
	}
	heap0, g0 := idle()

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
	heapBusy, _ := idle()
	for _, c := range clients {
		c.Close()
		<-c.done
	}
	n := len(clients)
	clients = nil // the test's own clients must not count
	waitUntil(t, 10*time.Second, "every stream and room to go", func() bool {
		return metric(t, s, "presence_streams_open") == 0 && metric(t, s, "presence_rooms") == 0
	})
	waitUntil(t, 10*time.Second, "goroutines back to idle", func() bool {
		_, g := idle()
		return g <= g0
	})
	heap1, _ := idle()
	t.Logf("heap idle %d KiB, with %d streams %d KiB, after %d KiB", heap0>>10, n, heapBusy>>10, heap1>>10)
	if heap1 > heap0+(heapBusy-heap0)/10 {
		t.Errorf("heap after all left %d KiB, idle was %d KiB (busy %d KiB)", heap1>>10, heap0>>10, heapBusy>>10)
	}
}
