package webhook

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/presence/presence/presence"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const testSecret = "a-secret-of-the-receiver"

// receiver is a real HTTP server that checks every request as a receiver
// should, and keeps the batches it accepted.
type receiver struct {
	t   *testing.T
	srv *httptest.Server

	mu       sync.Mutex
	status   int // answered to every request; 0: 200
	batches  []Body
	ids      map[string]bool // batch ids accepted
	tries    []try           // every well-signed request
	requests int
	seq      uint64        // of the last event accepted
	changed  chan struct{} // closed and replaced at every request
}

// try is a request the receiver saw: its batch id, when it came, and
// when the node sent it (its time_ms).
type try struct {
	id   string
	at   time.Time
	sent time.Time
}

func (r *receiver) seen() []try {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.tries)
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{t: t, ids: make(map[string]bool), changed: make(chan struct{})}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	if err != nil {
		r.t.Errorf("reading body: %v", err)
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.requests++
	close(r.changed)
	r.changed = make(chan struct{})
	if !Verify(body, req.Header.Get(SignatureHeader), testSecret) {
		r.t.Errorf("bad signature %q of %s", req.Header.Get(SignatureHeader), body)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	var b Body
	if err := json.Unmarshal(body, &b); err != nil {
		r.t.Errorf("body %s: %v", body, err)
		return
	}
	if ts := req.Header.Get(TimestampHeader); ts != strconv.FormatInt(b.TimeMS, 10) {
		r.t.Errorf("timestamp header %q, body's time_ms %d", ts, b.TimeMS)
	}
	if d := time.Since(time.UnixMilli(b.TimeMS)); d < -time.Second || d > 10*time.Second {
		r.t.Errorf("time_ms %d is %s off", b.TimeMS, d)
	}
	if req.Header.Get(BatchHeader) != b.ID || b.ID == "" {
		r.t.Errorf("batch header %q, body's id %q", req.Header.Get(BatchHeader), b.ID)
	}
	r.tries = append(r.tries, try{b.ID, time.Now(), time.UnixMilli(b.TimeMS)})
	if r.status != 0 {
		w.WriteHeader(r.status)
		return
	}
	if !r.ids[b.ID] { // a receiver drops a batch it has
		r.ids[b.ID] = true
		for _, e := range b.Events {
			if e.Seq <= r.seq {
				r.t.Errorf("event %v after seq %d: numbers must increase", e, r.seq)
			}
			r.seq = e.Seq
		}
		r.batches = append(r.batches, b)
	}
}

func (r *receiver) setStatus(s int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.status = s
}

// events returns every event accepted so far, in order, without their
// numbers (checked as they come).
func (r *receiver) events() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Event
	for _, b := range r.batches {
		for _, e := range b.Events {
			e.Seq = 0
			out = append(out, e)
		}
	}
	return out
}

// waitEvents waits until at least n events were accepted, and returns them.
func (r *receiver) waitEvents(n int, within time.Duration) []Event {
	r.t.Helper()
	deadline := time.After(within)
	for {
		r.mu.Lock()
		ch := r.changed
		r.mu.Unlock()
		if ev := r.events(); len(ev) >= n {
			return ev
		}
		select {
		case <-ch:
		case <-deadline:
			r.t.Fatalf("%d events within %s, want %d: %v", len(r.events()), within, n, r.events())
		}
	}
}

// waitRequests waits until the receiver has seen n requests.
func (r *receiver) waitRequests(n int, within time.Duration) {
	r.t.Helper()
	deadline := time.After(within)
	for {
		r.mu.Lock()
		ch, got := r.changed, r.requests
		r.mu.Unlock()
		if got >= n {
			return
		}
		select {
		case <-ch:
		case <-deadline:
			r.t.Fatalf("%d requests within %s, want %d", got, within, n)
		}
	}
}

// start runs a Notifier over a real hub and stops both at the test's end.
func start(t *testing.T, o Options, hubOpts presence.HubOptions) (*Notifier, *presence.Hub) {
	t.Helper()
	n, hub := build(t, o, hubOpts)
	stop := run(n)
	t.Cleanup(func() {
		hub.Close() // ends the grace timers; open streams hold no goroutine
		stop()
	})
	return n, hub
}

// build makes a Notifier, signing with testSecret unless o says, and a
// real hub that tells it.
func build(t *testing.T, o Options, hubOpts presence.HubOptions) (*Notifier, *presence.Hub) {
	t.Helper()
	if o.Secret == "" {
		o.Secret = testSecret
	}
	n, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	hubOpts.Observer = n
	hub, err := presence.NewHub(presence.NewMemory(), hubOpts)
	if err != nil {
		t.Fatal(err)
	}
	return n, hub
}

// run runs n until the stop it returns, which waits for Run to return.
func run(n *Notifier) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		n.Run(ctx)
	}()
	return func() {
		cancel()
		<-done
	}
}

func user(id, name string) presence.Member {
	return presence.Member{ID: "u:" + id, Name: name, Signed: true}
}

func join(t *testing.T, hub *presence.Hub, room string, m presence.Member) *presence.Stream {
	t.Helper()
	st, _, err := hub.JoinAs(room, m, presence.JoinOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return st
}
