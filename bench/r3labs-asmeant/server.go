package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/r3labs/sse/v2"
)

// server is the measured process: r3labs/sse used as its authors meant
// (sse.New, AutoReplay off unless a scenario asks for it, one stream per
// room and one members stream per room, srv.ServeHTTP as the handler,
// Publish for every count), plus a control listener on another port that
// the orchestrator drives. Nothing here changes what r3labs does: the
// writer wrapper only observes, and adds a write deadline when asked.
type server struct {
	sse      *sse.Server
	deadline time.Duration // per-write deadline through http.ResponseController; 0: none
	streams  *http.Server

	subs, unsubs atomic.Int64 // OnSubscribe / OnUnsubscribe calls
	returned     atomic.Int64 // r3labs handlers that returned
	floorOpen    atomic.Int64 // bare handlers still open
	floorGone    atomic.Int64 // bare handlers that returned
	stalledFrom  atomic.Int64 // unix ns when the stalled stream's current flush began; 0: not in a flush
	maxPublish   atomic.Int64 // longest Publish call, ns

	mu         sync.Mutex
	seen       map[*sse.Subscriber]bool // true: subscribed seen; false: unsubscribed seen first
	inversions int64                    // unsubscribes that ran before their subscribe
	naive      int64                    // a count kept by the callbacks
	naiveMin   int64                    // its lowest value
	counts     map[string]int64         // per room, kept under mu and published under it (scenario e)
	countOnSub bool                     // publish the room's count from OnSubscribe
	seq        map[string]uint64        // per stream publish sequence

	markAt  time.Time
	markCPU time.Duration
}

func runServer(deadline time.Duration, replay bool, out io.Writer) error {
	s := &server{deadline: deadline, seen: map[*sse.Subscriber]bool{}, counts: map[string]int64{}, seq: map[string]uint64{}}
	s.sse = sse.New()
	s.sse.AutoReplay = replay
	s.sse.OnSubscribe = s.onSubscribe
	s.sse.OnUnsubscribe = s.onUnsubscribe

	streamLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("listen streams: %w", err)
	}
	ctlLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("listen control: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/stream", s.serveStream)
	mux.HandleFunc("/floor", s.serveFloor)
	s.streams = &http.Server{Handler: mux}
	go s.streams.Serve(streamLn) //nolint:errcheck // ends with the process

	ctl := http.NewServeMux()
	ctl.HandleFunc("/stats", s.ctlStats)
	ctl.HandleFunc("/create", s.ctlCreate)
	ctl.HandleFunc("/publish", s.ctlPublish)
	ctl.HandleFunc("/tick", s.ctlTick)
	ctl.HandleFunc("/mark", s.ctlMark)
	ctl.HandleFunc("/wait", s.ctlWait)
	ctl.HandleFunc("/remove", s.ctlRemove)
	ctl.HandleFunc("/close", s.ctlClose)
	ctl.HandleFunc("/shutdown", s.ctlShutdown)
	ctl.HandleFunc("/countonsub", func(w http.ResponseWriter, _ *http.Request) {
		s.mu.Lock()
		s.countOnSub = true
		s.mu.Unlock()
	})
	fmt.Fprintf(out, "%s %s\n", streamLn.Addr(), ctlLn.Addr())
	return http.Serve(ctlLn, ctl)
}

func (s *server) onSubscribe(stream string, sub *sse.Subscriber) {
	s.subs.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, unsubFirst := s.seen[sub]; unsubFirst {
		delete(s.seen, sub)
	} else {
		s.seen[sub] = true
	}
	s.naive++
	if s.countOnSub {
		s.counts[stream]++
		s.publishLocked(stream, strconv.FormatInt(s.counts[stream], 10), 0)
	}
}

func (s *server) onUnsubscribe(stream string, sub *sse.Subscriber) {
	s.unsubs.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, subFirst := s.seen[sub]; subFirst {
		delete(s.seen, sub)
	} else {
		s.seen[sub] = false
		s.inversions++
	}
	s.naive--
	s.naiveMin = min(s.naiveMin, s.naive)
	if s.countOnSub {
		s.counts[stream]--
	}
}

// publishLocked publishes a fresh count event (r3labs rewrites events it is
// given) whose id is the stream's publish sequence; pad adds a comment of
// that many bytes, to fill a stalled socket quickly.
func (s *server) publishLocked(stream, data string, pad int) {
	s.seq[stream]++
	ev := &sse.Event{ID: []byte(strconv.FormatUint(s.seq[stream], 10)), Event: []byte("user count"), Data: []byte(data)}
	if pad > 0 {
		ev.Comment = make([]byte, pad)
		for i := range ev.Comment {
			ev.Comment[i] = 'x'
		}
	}
	t := time.Now()
	s.sse.Publish(stream, ev)
	d := int64(time.Since(t))
	for {
		old := s.maxPublish.Load()
		if d <= old || s.maxPublish.CompareAndSwap(old, d) {
			break
		}
	}
}

// serveStream is r3labs's own handler. The wrapper only times the stalled
// client's flushes, and, with -deadline, arms a write deadline before the
// first byte of each event and clears it after the flush.
func (s *server) serveStream(w http.ResponseWriter, r *http.Request) {
	ww := &writer{ResponseWriter: w, rc: http.NewResponseController(w), deadline: s.deadline}
	if r.URL.Query().Get("stalled") == "1" {
		ww.stalled = &s.stalledFrom
	}
	if r.URL.Query().Get("pre") == "1" {
		// The count comes from outside r3labs (as the service's hub does):
		// publish it before handing the request to r3labs.
		s.mu.Lock()
		st := r.URL.Query().Get("stream")
		s.counts[st]++
		s.publishLocked(st, strconv.FormatInt(s.counts[st], 10), 0)
		s.mu.Unlock()
	}
	s.sse.ServeHTTP(ww, r)
	s.returned.Add(1)
}

// serveFloor is the baseline: a stream that writes its headers and waits
// for the client to go, with nothing of r3labs.
func (s *server) serveFloor(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	w.(http.Flusher).Flush()
	s.floorOpen.Add(1)
	<-r.Context().Done()
	s.floorOpen.Add(-1)
	s.floorGone.Add(1)
}

type writer struct {
	http.ResponseWriter
	rc       *http.ResponseController
	deadline time.Duration
	armed    bool
	stalled  *atomic.Int64
}

func (w *writer) Write(p []byte) (int, error) {
	if w.deadline > 0 && !w.armed {
		_ = w.rc.SetWriteDeadline(time.Now().Add(w.deadline))
		w.armed = true
	}
	if w.stalled == nil {
		return w.ResponseWriter.Write(p)
	}
	// A write larger than net/http's buffer goes to the socket at once.
	w.stalled.Store(time.Now().UnixNano())
	defer w.stalled.Store(0)
	return w.ResponseWriter.Write(p)
}

// Flush implements http.Flusher, without which r3labs answers 500.
func (w *writer) Flush() {
	if w.stalled != nil {
		w.stalled.Store(time.Now().UnixNano())
	}
	_ = w.rc.Flush()
	if w.stalled != nil {
		w.stalled.Store(0)
	}
	if w.armed {
		_ = w.rc.SetWriteDeadline(time.Time{})
		w.armed = false
	}
}

type stats struct {
	Goroutines  int     `json:"goroutines"`
	Subs        int64   `json:"subs"`
	Unsubs      int64   `json:"unsubs"`
	Returned    int64   `json:"returned"`
	FloorOpen   int64   `json:"floor_open"`
	FloorGone   int64   `json:"floor_gone"`
	Inversions  int64   `json:"inversions"`
	Naive       int64   `json:"naive"`
	NaiveMin    int64   `json:"naive_min"`
	StalledMs   float64 `json:"stalled_ms"` // how long the stalled stream's current flush has blocked
	MaxPublish  float64 `json:"max_publish_ms"`
	HeapStack   uint64  `json:"heap_stack"` // HeapInuse+StackInuse after a GC
	Seq         uint64  `json:"seq"`        // publishes so far on the stream named in the query
	InClose     int     `json:"in_close"`   // goroutines inside r3labs's Subscriber.close (with stacks=1)
	CPUSinceMrk float64 `json:"cpu_since_mark_s"`
	WallSince   float64 `json:"wall_since_mark_s"`
}

func (s *server) snapshot(gc bool, stream string) stats {
	st := stats{
		Goroutines: runtime.NumGoroutine(),
		Subs:       s.subs.Load(), Unsubs: s.unsubs.Load(), Returned: s.returned.Load(),
		FloorOpen: s.floorOpen.Load(), FloorGone: s.floorGone.Load(),
		MaxPublish: float64(s.maxPublish.Load()) / 1e6,
	}
	if f := s.stalledFrom.Load(); f != 0 {
		st.StalledMs = float64(time.Now().UnixNano()-f) / 1e6
	}
	s.mu.Lock()
	st.Inversions, st.Naive, st.NaiveMin = s.inversions, s.naive, s.naiveMin
	st.Seq = s.seq[stream]
	if !s.markAt.IsZero() {
		st.WallSince = time.Since(s.markAt).Seconds()
		st.CPUSinceMrk = (cpuTime() - s.markCPU).Seconds()
	}
	s.mu.Unlock()
	if gc {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		st.HeapStack = m.HeapInuse + m.StackInuse
	}
	return st
}

func (s *server) ctlStats(w http.ResponseWriter, r *http.Request) {
	st := s.snapshot(r.URL.Query().Get("gc") == "1", r.URL.Query().Get("stream"))
	if r.URL.Query().Get("stacks") == "1" {
		buf := make([]byte, 64<<20)
		buf = buf[:runtime.Stack(buf, true)]
		st.InClose = bytes.Count(buf, []byte("github.com/r3labs/sse/v2.(*Subscriber).close("))
	}
	_ = json.NewEncoder(w).Encode(st)
}

func (s *server) ctlCreate(_ http.ResponseWriter, r *http.Request) {
	s.sse.CreateStream(r.URL.Query().Get("stream"))
}

func (s *server) ctlPublish(_ http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	pad, _ := strconv.Atoi(q.Get("pad"))
	data := q.Get("data")
	if n, _ := strconv.Atoi(q.Get("members")); n > 0 {
		data = memberList(n)
	}
	count := max(1, atoi(q.Get("count")))
	s.mu.Lock()
	defer s.mu.Unlock()
	for range count {
		s.publishLocked(q.Get("stream"), data, pad)
	}
}

// ctlTick publishes a count every "every" for "for", from its own
// goroutine, as a room's coalescing clock would.
func (s *server) ctlTick(_ http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	every, _ := time.ParseDuration(q.Get("every"))
	total, _ := time.ParseDuration(q.Get("for"))
	stream := q.Get("stream")
	go func() {
		t := time.NewTicker(every)
		defer t.Stop()
		end := time.Now().Add(total)
		for now := range t.C {
			if now.After(end) {
				return
			}
			s.mu.Lock()
			s.publishLocked(stream, "7", 0)
			s.mu.Unlock()
		}
	}()
}

func (s *server) ctlMark(http.ResponseWriter, *http.Request) {
	s.mu.Lock()
	s.markAt, s.markCPU = time.Now(), cpuTime()
	s.mu.Unlock()
}

// ctlWait waits until OnUnsubscribe (or, with floor=1, the bare handlers)
// reached n, and answers the stats then: wall and CPU time since the mark.
func (s *server) ctlWait(w http.ResponseWriter, r *http.Request) {
	n, _ := strconv.ParseInt(r.URL.Query().Get("n"), 10, 64)
	counter := &s.unsubs
	if r.URL.Query().Get("floor") == "1" {
		counter = &s.floorGone
	}
	end := time.Now().Add(60 * time.Second)
	for counter.Load() < n && time.Now().Before(end) {
		time.Sleep(time.Millisecond)
	}
	_ = json.NewEncoder(w).Encode(s.snapshot(false, ""))
}

func (s *server) ctlRemove(_ http.ResponseWriter, r *http.Request) {
	s.sse.RemoveStream(r.URL.Query().Get("stream"))
}

func (s *server) ctlClose(http.ResponseWriter, *http.Request) { s.sse.Close() }

// ctlShutdown is net/http's graceful shutdown of the stream listener, with
// a timeout: it waits for every handler to return.
func (s *server) ctlShutdown(w http.ResponseWriter, r *http.Request) {
	d, _ := time.ParseDuration(r.URL.Query().Get("timeout"))
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	t := time.Now()
	err := s.streams.Shutdown(ctx)
	fmt.Fprintf(w, "%v after %s", err, time.Since(t).Round(time.Millisecond))
}

// memberList is a presence event with n members, as the service writes it
// for a signed-in stream's first member list.
func memberList(n int) string {
	b := []byte(`{"room":"m","people":` + strconv.Itoa(n) + `,"connections":` + strconv.Itoa(n) + `,"members":[`)
	for i := range n {
		if i > 0 {
			b = append(b, ',')
		}
		b = fmt.Appendf(b, `{"id":"u:%06d","name":"Member %06d"}`, i, i)
	}
	return string(append(b, `],"truncated":false}`...))
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
