// Command floor is a deliberately minimal Server-Sent Events user counter
// written with nothing but net/http. It exists as the baseline ("floor") for
// the load tool in ../: whatever the real presence service costs in CPU,
// memory and latency is compared against this, measured in the same run on
// the same machine. It does the same observable job and coalesces updates the
// same way a real service would (one broadcast per 100 ms tick at most), and
// nothing else: no heartbeat, no caps, no metrics.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net/http"
	"sync"
	"time"
)

var (
	mu    sync.Mutex
	count int64
	wake  = make(chan struct{}) // closed and replaced when count changed
)

// join counts a new stream and returns the count and the channel to wait on.
func join() (int64, chan struct{}) {
	mu.Lock()
	defer mu.Unlock()
	count++
	return count, wake
}

func leave() {
	mu.Lock()
	count--
	mu.Unlock()
}

// current returns the latest count and the channel of the next change.
func current() (int64, chan struct{}) {
	mu.Lock()
	defer mu.Unlock()
	return count, wake
}

// broadcast wakes every stream at most once per tick, if the count changed.
func broadcast(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	last := int64(-1)
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		mu.Lock()
		if count != last {
			last = count
			close(wake)
			wake = make(chan struct{})
		}
		mu.Unlock()
	}
}

func events(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	n, ch := join()
	defer leave()
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	for {
		if _, err := fmt.Fprintf(w, "event: user count\ndata: %d\n\n", n); err != nil {
			return
		}
		fl.Flush()
		select {
		case <-r.Context().Done():
			return
		case <-ch:
			n, ch = current()
		}
	}
}

func main() {
	addr := flag.String("addr", "127.0.0.1:8090", "listen address")
	flag.Parse()
	go broadcast(context.Background(), 100*time.Millisecond)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /events", events)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusOK)
	})
	srv := &http.Server{Addr: *addr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	log.Fatal(srv.ListenAndServe())
}
