package handlers

import (
	"bytes"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"
)

// A Conn whose writes never wait takes a write bigger than its socket
// holds at once and keeps the rest; while a drain holds what it took,
// later writes (a TLS alert or KeyUpdate from the reading goroutine) go
// after it, and once the drain releases an empty debt they go straight to
// the socket again. The reader gets every byte, in order.
func TestConnWritesNeverWaitAndKeepOrder(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	accepted, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	tc := accepted.(*net.TCPConn)
	_ = tc.SetWriteBuffer(4096)
	c := NewConn(tc)
	defer c.Close()
	var left atomic.Int32 // writes that left bytes owed with no drain holding them
	if err := c.tryWrites(func() { left.Add(1) }); err != nil {
		t.Fatal(err)
	}

	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB, far more than the socket buffers
	start := time.Now()
	if n, err := c.Write(big); n != len(big) || err != nil {
		t.Fatalf("write: %d, %v; want all of it taken", n, err)
	}
	if took := time.Since(start); took > 500*time.Millisecond {
		t.Errorf("a write to a client that reads nothing took %s", took)
	}
	if n := left.Load(); n != 1 {
		t.Errorf("told of bytes left owed %d times, want 1", n)
	}
	owed := c.takeOwed(false)
	if len(owed) == 0 || len(owed) >= len(big) {
		t.Fatalf("%d bytes owed of %d, want the part the socket did not take", len(owed), len(big))
	}

	// The client reads; once the socket has room again, a write while
	// the drain holds what it took goes after it, not to the socket.
	var read atomic.Int64
	got := make(chan []byte)
	go func() {
		b, _ := io.ReadAll(countingReader{client, &read})
		got <- b
	}()
	for sent := int64(len(big) - len(owed)); read.Load() < sent; time.Sleep(time.Millisecond) {
		if time.Since(start) > 5*time.Second {
			t.Fatalf("the client read %d bytes of the %d sent", read.Load(), sent)
		}
	}
	if _, err := c.Write([]byte("B")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for p := owed; len(p) > 0; p = c.takeOwed(true) {
		if err := c.writeWaiting(p, deadline); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Write([]byte("C")); err != nil { // released: straight to the socket
		t.Fatal(err)
	}
	if p := c.takeOwed(false); len(p) != 0 {
		t.Fatalf("%q owed after the drain let go", p)
	}
	if n := left.Load(); n != 1 {
		t.Errorf("told of bytes left owed %d times, want 1 (the writes while held, and after, left none)", n)
	}
	c.Close()
	want := append(append(big, 'B'), 'C')
	if b := <-got; !bytes.Equal(b, want) {
		t.Fatalf("the client read %d bytes, want the %d written, in order", len(b), len(want))
	}
}

// countingReader counts what it reads.
type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}
