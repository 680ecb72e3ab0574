package handlers

import (
	"net"
	"testing"
	"time"
)

// A connection is refused past maxEarlyEnds early ends in one window, not
// at it; a new window starts from zero; a refused connection is closed
// within hardClose.
func TestConnStateThreshold(t *testing.T) {
	server, client := net.Pipe()
	defer client.Close()
	c := &connState{conn: server}
	t0 := time.Now()
	for i := range maxEarlyEnds {
		if c.endedEarly(t0.Add(time.Duration(i) * time.Millisecond)) {
			t.Fatalf("refused after %d early ends", i+1)
		}
	}
	// The window is over: the count starts again.
	for i := range maxEarlyEnds {
		if c.endedEarly(t0.Add(earlyWindow + time.Duration(i)*time.Millisecond)) {
			t.Fatalf("refused after %d early ends of a new window", i+1)
		}
	}
	if !c.endedEarly(t0.Add(earlyWindow+time.Second)) || !c.isRefused() {
		t.Fatalf("not refused after %d early ends in one window", maxEarlyEnds+1)
	}
	client.SetReadDeadline(time.Now().Add(hardClose + 5*time.Second))
	if _, err := client.Read(make([]byte, 1)); err == nil || time.Since(t0) > hardClose+4*time.Second {
		t.Fatalf("a refused connection was not closed: %v", err)
	}
	var none *connState // no ConnContext: nothing counted or refused
	if none.endedEarly(time.Now()) || none.isRefused() {
		t.Fatal("a nil state refused")
	}
}
