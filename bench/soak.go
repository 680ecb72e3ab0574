package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/presence/presence/bench/proc"
)

// soakConfig holds the settings of the soak target (the --soak-* flags).
type soakConfig struct {
	Duration   time.Duration `json:"duration"` // churn phase, checkpoints included
	H1         int           `json:"h1_streams"`
	H2Conns    int           `json:"h2_connections"`
	H2Streams  int           `json:"h2_streams_per_connection"`
	Rooms      int           `json:"rooms"`
	Churn      float64       `json:"churn_joins_per_s"` // leaves follow after each client's life
	ChurnH2    float64       `json:"churn_h2_share"`
	Visitors   float64       `json:"churn_visitor_share"`
	Stalled    int           `json:"stalled"`
	Checkpoint time.Duration `json:"checkpoint_every"`
	Quiet      time.Duration `json:"quiet_hold"`
	Sample     time.Duration `json:"sample_every"`
	Settle     time.Duration `json:"settle_limit"` // bound on the wait for RSS and goroutines at the end
	RampRate   float64       `json:"ramp_rate"`
	Sources    int           `json:"sources"`
	JSONPath   string        `json:"-"`
	SVGPath    string        `json:"-"`
}

// Churn clients live a uniformly random time in [churnLifeMin, churnLifeMax].
const (
	churnLifeMin = 1 * time.Second
	churnLifeMax = 20 * time.Second
	// churnTick paces joins and leaves.
	churnTick = 20 * time.Millisecond
	// visitorReuse is the share of visitor joins that come back with the id
	// of a visitor who just left the same room (a page reload), which the
	// service's grace should absorb.
	visitorReuse = 0.5
	// reuseWithin is how recently a visitor must have left to be reused.
	reuseWithin = 2 * time.Second
	// settleLimit bounds a checkpoint's wait for counts to settle (the
	// service's grace, 3 s by default, is part of it).
	settleLimit = 30 * time.Second
	// recheckLimit bounds the check at the end of a quiet hold.
	recheckLimit = 10 * time.Second
	// warmSettle is the wait, after the warm-up wave has left, before the
	// baseline: longer than the service takes to see that a wave has
	// passed and give memory back (memory.go: a 5 s check, two checks).
	warmSettle = 30 * time.Second
	// growthLimit is the largest end/start ratio of RSS and goroutines.
	growthLimit = 1.10
)

// check validates c against the machine's limits.
func (c soakConfig) check(nofile uint64) error {
	switch {
	case c.Duration < 10*time.Second || c.Duration > 24*time.Hour:
		return errors.New("--soak-duration must be in [10s, 24h]")
	case c.H1 < 0 || c.H2Conns < 0 || c.H2Streams < 1 || c.H2Streams > 100 || c.Stalled < 0 || c.Stalled > 100:
		return errors.New("--soak-h1, --soak-h2-conns must be >= 0, --soak-h2-streams in [1, 100], --soak-stalled in [0, 100]")
	case c.H1+c.H2Conns*c.H2Streams == 0:
		return errors.New("the soak needs some long-lived readers (--soak-h1, --soak-h2-conns)")
	case c.Rooms < 1 || c.Rooms > 100:
		return errors.New("--soak-rooms must be in [1, 100]")
	case c.Churn < 0 || c.Churn > 1000:
		return errors.New("--soak-churn must be in [0, 1000]")
	case c.ChurnH2 < 0 || c.ChurnH2 > 1 || c.Visitors < 0 || c.Visitors > 1:
		return errors.New("--soak-churn-h2 and --soak-visitors are shares in [0, 1]")
	case c.Checkpoint < 10*time.Second:
		return errors.New("--soak-checkpoint must be at least 10s")
	case c.Quiet < 0 || c.Quiet > 10*time.Minute:
		return errors.New("--soak-quiet must be in [0, 10m]")
	case c.Sample < 500*time.Millisecond || c.Sample > time.Minute:
		return errors.New("--soak-sample must be in [500ms, 1m]")
	case c.Settle < 0 || c.Settle > 30*time.Minute:
		return errors.New("--soak-settle must be in [0, 30m]")
	case c.RampRate <= 0 || c.RampRate > 10000:
		return errors.New("--soak-ramp must be in (0, 10000]")
	}
	if need := uint64(c.H1+c.H2Conns+c.Stalled+c.maxChurn()) + 100; need > nofile {
		return fmt.Errorf("the soak needs up to %d open files, this process may have %d", need, nofile)
	}
	// Ports: open connections plus the churn's TIME_WAIT (60 s on Linux).
	if per := (c.H1 + c.H2Conns + c.maxChurn() + int(c.Churn*60) + c.Sources - 1) / c.Sources; per > 25000 {
		return fmt.Errorf("%d ports per source address is too many for ~28,000 ephemeral ports; raise --sources", per)
	}
	return nil
}

// maxChurn bounds the churn clients open or dialing at once: a server that
// falls behind makes joins wait, and the soak skips joins rather than pile
// them up.
func (c soakConfig) maxChurn() int {
	return int(c.Churn*(churnLifeMax+soakOpenTimeout).Seconds()) + 10
}

// soakRoom names room i.
func soakRoom(i int) string { return fmt.Sprintf("soak-%d", i) }

// soak is one run of the soak target.
type soak struct {
	cfg   soakConfig
	base  time.Time
	srv   *server
	addr  string
	api   *http.Client
	tlsH1 *tls.Config
	pool  *x509.CertPool

	dialers []*net.Dialer
	roster  *roster
	events  soakEvents
	clients sync.WaitGroup // one per reading client goroutine

	long    []*soakClient
	h2      []*http.Transport               // one per long-lived HTTP/2 connection
	stalled []atomic.Pointer[stalledClient] // nil until opened
	churn   churner

	phase     atomic.Pointer[string]
	lastTable atomic.Int64 // ns since base of the last socket-table read

	mu      sync.Mutex // guards samples
	samples []soakSample
}

func (s *soak) now() int64 { return int64(time.Since(s.base)) }

func (s *soak) setPhase(p string) {
	s.phase.Store(&p)
	progress("soak: %s (t=%.0f s)", p, time.Since(s.base).Seconds())
}

// soakResult is the JSON the soak writes.
type soakResult struct {
	Env         Env                 `json:"env"`
	Config      soakConfig          `json:"config"`
	DurationS   float64             `json:"duration_s"`
	ServerArgs  []string            `json:"server_args"`
	Baseline    soakSample          `json:"baseline"`      // after a warm-up wave: the start the end is held to
	Cold        soakSample          `json:"cold_baseline"` // right after start-up, before any stream
	WarmUpS     float64             `json:"warm_up_s"`     // how long the warm-up wave took, settling included
	End         soakSample          `json:"end"`
	EndWaitS    float64             `json:"end_wait_s"` // from everyone gone to RSS and goroutines back (or the limit)
	Checkpoints []checkpointResult  `json:"checkpoints"`
	Churn       churnStats          `json:"churn"`
	Stalled     []stalledResult     `json:"stalled"`
	Disconnects map[string]int      `json:"disconnects"`       // unexpected ends of open streams, by client kind
	OpenFailed  map[string]int      `json:"open_failed"`       // streams that never opened, by client kind
	EventKinds  map[string]int      `json:"events_by_kind"`    // both, by client kind and cause
	FirstEvents []soakEvent         `json:"first_events"`      // the first few in detail
	MaxSilenceS float64             `json:"max_silence_s"`     // longest silence seen on an open long-lived stream
	Samples     []soakSample        `json:"samples"`           // the time series
	Checks      []soakCheck         `json:"checks"`            // the verdict, item by item
	Pass        bool                `json:"pass"`              // all checks passed
	Error       string              `json:"error,omitempty"`   // why the run stopped early
	Metrics     map[string]float64  `json:"metrics_at_end"`    // the service's counters at the end
	OpenedLong  map[string]int      `json:"opened_long"`       // long-lived streams opened, by kind
	Extra       map[string][]string `json:"notes,omitempty"`   // anything else worth knowing
	LoadAvg     []string            `json:"loadavg,omitempty"` // at the start and the end
}

// stalledResult is one never-reading client.
type stalledResult struct {
	Local  string  `json:"local"`
	Cut    bool    `json:"cut"`
	CutAtS float64 `json:"cut_at_s,omitempty"` // when the socket table first showed it cut (sample resolution)
}

// soakCheck is one item of the verdict.
type soakCheck struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
}

// runSoak runs the soak against a fresh presence (bin) and writes its
// results. It returns an error if any check failed or the run broke off.
func runSoak(ctx context.Context, cfg soakConfig, bin string, extra []string, root, tmp string, env Env) error {
	certFile, keyFile, pool, err := selfSignedCert(tmp)
	if err != nil {
		return fmt.Errorf("certificate: %w", err)
	}
	s := &soak{
		cfg:    cfg,
		roster: newRoster(cfg.Rooms),
		api:    newAPIClient(pool),
		pool:   pool,
		tlsH1:  &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", NextProtos: []string{"http/1.1"}},
	}
	for i := range cfg.Sources {
		s.dialers = append(s.dialers, newDialer(net.IPv4(127, 0, 0, byte(2+i))))
	}
	res := soakResult{Env: env, Config: cfg, LoadAvg: []string{loadAvg()}}
	args := append([]string{"--tls-cert", certFile, "--tls-key", keyFile}, extra...)
	res.ServerArgs = args
	runErr := s.run(ctx, bin, args, tmp, &res)
	if runErr != nil {
		res.Error = runErr.Error()
		progress("soak stopped: %v", runErr)
	}
	s.finish(&res)
	res.LoadAvg = append(res.LoadAvg, loadAvg())

	writeSoakSummary(os.Stdout, &res)
	if cfg.JSONPath != "" {
		p := cfg.JSONPath
		if !filepath.IsAbs(p) {
			p = filepath.Join(root, p)
		}
		if err := writeJSONFile(p, &res, p); err != nil {
			return err
		}
	}
	if cfg.SVGPath != "" {
		p := cfg.SVGPath
		if !filepath.IsAbs(p) {
			p = filepath.Join(root, p)
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, []byte(renderSoakSVG(&res)), 0o644); err != nil {
			return err
		}
		progress("wrote %s", p)
	}
	if runErr != nil {
		return fmt.Errorf("soak: %w", runErr)
	}
	if !res.Pass {
		return errors.New("soak: FAIL (see the checks above)")
	}
	return nil
}

// run is the soak from the server's start to its stop; it fills res.
func (s *soak) run(ctx context.Context, bin string, args []string, tmp string, res *soakResult) (err error) {
	port, err := freePort()
	if err != nil {
		return err
	}
	s.addr = fmt.Sprintf("127.0.0.1:%d", port)
	s.base = time.Now()
	s.setPhase("start")
	srv, err := startProcess(bin, append([]string{"--addr", s.addr}, args...), filepath.Join(tmp, "soak-presence.log"))
	if err != nil {
		return err
	}
	s.srv = srv
	defer func() {
		s.closeAll()
		srv.stop()
		if err != nil {
			err = fmt.Errorf("%w\n--- server log tail ---\n%s", err, srv.logTail(2000))
		}
	}()
	if err := s.waitHealthy(ctx, 20*time.Second); err != nil {
		return err
	}

	// Baseline: after start-up, with no stream, as the end is measured.
	s.setPhase("baseline")
	if err := sleepCtx(ctx, 2*time.Second); err != nil {
		return err
	}
	var base []soakSample
	for range 3 {
		smp, err := s.takeSample(ctx, nil)
		if err != nil {
			return fmt.Errorf("baseline: %w", err)
		}
		base = append(base, smp)
		if err := sleepCtx(ctx, time.Second); err != nil {
			return err
		}
	}
	slices.SortFunc(base, func(a, b soakSample) int { return int(a.RSSKiB - b.RSSKiB) })
	res.Cold = base[1]
	slices.SortFunc(base, func(a, b soakSample) int { return a.Goroutines - b.Goroutines })
	res.Cold.Goroutines = base[1].Goroutines
	progress("soak: cold baseline RSS %d KiB, %d goroutines", res.Cold.RSSKiB, res.Cold.Goroutines)

	// A warm-up wave: the long-lived readers open and leave once, and the
	// baseline is taken after it. A Go process never gives back some of
	// what its first peak made (a descriptor per goroutine it ever ran,
	// span metadata, code pages first touched), so RSS after any wave is
	// above a cold process's; what must not happen is growth from one
	// wave to the next, which is what the end is held to. The cold
	// baseline is reported beside it.
	warm := time.Now()
	s.setPhase("warm-up")
	s.prepare()
	stalled := s.stalled
	s.stalled = nil // the never-reading clients come in the soak proper
	if err := s.ramp(ctx, res); err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}
	s.closeAll()
	if gone, err := s.waitEmpty(ctx, time.Minute); err != nil || !gone {
		return fmt.Errorf("warm-up: the service did not empty within a minute (%v)", err)
	}
	s.long, s.h2, s.stalled = nil, nil, stalled
	// The service gives memory back once a wave has passed (within two or
	// three of its 5 s checks): wait warmSettle, so that the baseline is
	// taken as the end will be, then for RSS to hold still (three samples
	// within 1%), bounded.
	if err := sleepCtx(ctx, warmSettle); err != nil {
		return err
	}
	var last []int64
	for i := 0; i < 30; i++ {
		smp, err := s.takeSample(ctx, nil)
		if err != nil {
			return fmt.Errorf("warm-up baseline: %w", err)
		}
		res.Baseline = smp
		last = append(last, smp.RSSKiB)
		if n := len(last); n >= 3 && float64(max(last[n-1], last[n-2], last[n-3])-min(last[n-1], last[n-2], last[n-3])) <= 0.01*float64(last[n-1]) {
			break
		}
		if err := sleepCtx(ctx, 2*time.Second); err != nil {
			return err
		}
	}
	res.WarmUpS = time.Since(warm).Seconds()
	progress("soak: baseline after the warm-up wave (%.0f s): RSS %d KiB, %d goroutines", res.WarmUpS, res.Baseline.RSSKiB, res.Baseline.Goroutines)

	s.prepare()
	sctx, stopSampler := context.WithCancel(ctx)
	samplerDone := make(chan struct{})
	go func() {
		defer close(samplerDone)
		s.sampleLoop(sctx)
	}()
	defer func() {
		stopSampler()
		<-samplerDone
	}()

	s.setPhase("ramp")
	if err := s.ramp(ctx, res); err != nil {
		return err
	}
	s.setPhase("churn")
	if err := s.churnPhase(ctx, res); err != nil {
		return err
	}

	s.setPhase("leave")
	s.refreshStalled(true)
	s.closeAll()
	gone, err := s.waitEmpty(ctx, time.Minute)
	if err != nil {
		return err
	}
	if !gone {
		res.note("end", "streams or people still counted a minute after everyone left")
	}

	// RSS and goroutines back: poll, bounded; the server is left alone
	// (no forced GC), so this may take until the runtime's periodic GC
	// (every 2 minutes) and its scavenger have run.
	s.setPhase("settle")
	start := time.Now()
	deadline := start.Add(s.cfg.Settle)
	for {
		smp, err := s.takeSample(ctx, nil)
		if err != nil {
			return fmt.Errorf("end: %w", err)
		}
		res.End, res.EndWaitS = smp, time.Since(start).Seconds()
		if within(smp, res.Baseline) || time.Now().After(deadline) {
			break
		}
		if err := sleepCtx(ctx, 2*time.Second); err != nil {
			return err
		}
	}
	progress("soak: end RSS %d KiB (baseline %d), %d goroutines (baseline %d), after %.0f s",
		res.End.RSSKiB, res.Baseline.RSSKiB, res.End.Goroutines, res.Baseline.Goroutines, res.EndWaitS)
	if m, err := s.metrics(ctx); err == nil {
		res.Metrics = map[string]float64{}
		for k, v := range m {
			if strings.HasPrefix(k, "presence_") {
				res.Metrics[k] = v
			}
		}
	}
	return nil
}

// within reports whether RSS and goroutines of smp are back within
// growthLimit of base.
func within(smp, base soakSample) bool {
	return float64(smp.RSSKiB) <= growthLimit*float64(base.RSSKiB) && float64(smp.Goroutines) <= growthLimit*float64(base.Goroutines)
}

func (r *soakResult) note(key, text string) {
	if r.Extra == nil {
		r.Extra = map[string][]string{}
	}
	r.Extra[key] = append(r.Extra[key], text)
}

// waitHealthy polls GET /healthz over HTTPS until it answers 200.
func (s *soak) waitHealthy(ctx context.Context, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		if !s.srv.alive() {
			return fmt.Errorf("server exited before healthy: %v", s.srv.waitErr)
		}
		if _, err := getBody(ctx, s.api, "https://"+s.addr+"/healthz"); err == nil {
			return nil
		} else if time.Now().After(deadline) {
			return fmt.Errorf("server not healthy within %v: %w", limit, err)
		}
		if err := sleepCtx(ctx, 50*time.Millisecond); err != nil {
			return err
		}
	}
}

// metrics fetches and parses GET /metrics.
func (s *soak) metrics(ctx context.Context) (map[string]float64, error) {
	b, err := getBody(ctx, s.api, "https://"+s.addr+"/metrics")
	if err != nil {
		return nil, err
	}
	return parseMetrics(bytes.NewReader(b))
}

// rampInFlight bounds the long-lived streams opening at once in the ramp.
const rampInFlight = 200

// prepare makes the long-lived readers (not yet started) and the HTTP/2
// transports, before the sampler looks at them.
func (s *soak) prepare() {
	cfg := s.cfg
	// Long-lived HTTP/1.1 readers: room r gets a share proportional to
	// 1/(r+1), so room 0 is the busy one and every room has readers.
	w := make([]float64, cfg.Rooms)
	sum := 0.0
	for r := range w {
		w[r] = 1 / float64(r+1)
		sum += w[r]
	}
	for i := range cfg.H1 {
		x, room := (float64(i)+0.5)/float64(cfg.H1)*sum, 0
		for x > w[room] && room < cfg.Rooms-1 {
			x -= w[room]
			room++
		}
		s.long = append(s.long, newSoakClient(skLongH1, room, ""))
	}
	// HTTP/2: a browser per connection (one visitor id), its tabs spread
	// over the rooms, so a room may hold two tabs of one person.
	for k := range cfg.H2Conns {
		id := newVisitorID()
		for j := range cfg.H2Streams {
			s.long = append(s.long, newSoakClient(skLongH2, (k+j)%cfg.Rooms, id))
		}
		s.h2 = append(s.h2, newH2Transport(s.dialers[k%len(s.dialers)], s.pool))
	}
	s.stalled = make([]atomic.Pointer[stalledClient], cfg.Stalled)
}

// ramp starts the long-lived readers, paced at RampRate, and the
// never-reading clients, and waits until every one is open or failed.
func (s *soak) ramp(ctx context.Context, res *soakResult) error {
	cfg := s.cfg
	firsts := cfg.H1
	start := time.Now()
	started := 0
	for started < len(s.long) {
		if err := ctx.Err(); err != nil {
			return err
		}
		if !s.srv.alive() {
			return errServerDied
		}
		// Paced, and with at most rampInFlight opening at once: a busy
		// machine makes TLS handshakes slow, and the server drops those
		// not done within its --read-header-timeout.
		due := min(len(s.long), int(time.Since(start).Seconds()*cfg.RampRate)+1)
		inFlight := 0
		for _, c := range s.long[:started] {
			if c.state.Load() == stPending {
				inFlight++
			}
		}
		due = min(due, started+max(0, rampInFlight-inFlight))
		for ; started < due; started++ {
			c := s.long[started]
			s.clients.Add(1)
			if c.kind == skLongH1 {
				go s.runH1(c, s.dialers[started%len(s.dialers)])
				continue
			}
			// The first stream of a connection opens it; its other
			// tabs follow once it is up, and share it.
			k, j := (started-firsts)/cfg.H2Streams, (started-firsts)%cfg.H2Streams
			if j == 0 {
				go func() {
					s.runH2(c, s.h2[k], false)
				}()
				continue
			}
			go func() {
				first := s.long[firsts+k*cfg.H2Streams]
				for first.state.Load() == stPending { // bounded by the first's open timeout
					time.Sleep(10 * time.Millisecond)
				}
				s.runH2(c, s.h2[k], false)
			}()
		}
		time.Sleep(time.Millisecond)
	}
	limit := time.Duration(float64(len(s.long))/cfg.RampRate*float64(time.Second)) + 3*soakOpenTimeout
	deadline := time.Now().Add(limit)
	for {
		pending := 0
		for _, c := range s.long {
			if c.state.Load() == stPending {
				pending++
			}
		}
		if pending == 0 {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("ramp: %d long-lived streams still not open after %v", pending, limit)
		}
		if err := sleepCtx(ctx, 50*time.Millisecond); err != nil {
			return err
		}
	}
	res.OpenedLong = map[string]int{}
	for _, c := range s.long {
		if c.state.Load() == stOpen {
			res.OpenedLong[soakKindNames[c.kind]]++
		}
	}
	progress("soak: ramp done in %.1f s: %v open", time.Since(start).Seconds(), res.OpenedLong)

	for i := range s.stalled {
		st, err := s.openStalled(s.dialers[i%len(s.dialers)].LocalAddr.(*net.TCPAddr).IP)
		if err != nil {
			return fmt.Errorf("never-reading client %d: %w", i+1, err)
		}
		s.stalled[i].Store(st)
	}
	if cfg.Stalled > 0 {
		progress("soak: %d never-reading clients open in %s", cfg.Stalled, soakRoom(0))
	}
	return nil
}

// newVisitorID returns a random visitor id as the service makes them.
func newVisitorID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// refreshStalled reads the socket table, at most once a second unless
// forced, and marks the never-reading clients the server has cut.
func (s *soak) refreshStalled(force bool) {
	now := s.now()
	if s.stalledUncut() == 0 || (!force && now-s.lastTable.Load() < int64(time.Second)) {
		return
	}
	s.lastTable.Store(now)
	srv, err := netip.ParseAddrPort(s.addr)
	if err != nil {
		return
	}
	socks, err := serverSockets(srv)
	if err != nil {
		progress("  socket table: %v", err)
		return
	}
	for i := range s.stalled {
		st := s.stalled[i].Load()
		if st == nil {
			continue
		}
		// /proc/net/tcp is read in pieces while sockets come and go, so
		// a line may be missed: a state other than ESTABLISHED is proof
		// at once, an absence only when two reads agree.
		switch state, ok := socks[st.local]; {
		case ok && state == tcpEstablished:
			st.missing.Store(0)
		case ok || st.missing.Add(1) >= 2:
			st.cutAt.CompareAndSwap(0, now)
		}
	}
}

// stalledUncut counts the never-reading clients not yet cut.
func (s *soak) stalledUncut() int {
	n := 0
	for i := range s.stalled {
		if st := s.stalled[i].Load(); st != nil && st.cutAt.Load() == 0 {
			n++
		}
	}
	return n
}

// expected returns each room's people and streams as the service should
// count them: the roster, and the never-reading clients (anonymous, room
// 0) until the server cuts them.
func (s *soak) expected() []tally {
	t := s.roster.tallies()
	u := s.stalledUncut()
	t[0].people += u
	t[0].conns += u
	return t
}

// readers returns every reading client the soak holds (only from the
// goroutine that runs the churn).
func (s *soak) readers() []*soakClient {
	return append(slices.Clip(s.long), s.churn.live...)
}

// wrongReaders compares every open reader's last count with exp; it
// returns how many it checked and, per room, how many were wrong and a few
// of the wrong values seen.
func (s *soak) wrongReaders(exp []tally) (checked int, wrong []int, seen []map[int64]int) {
	wrong, seen = make([]int, len(exp)), make([]map[int64]int, len(exp))
	for _, c := range s.readers() {
		if c.state.Load() != stOpen {
			continue
		}
		checked++
		if v := c.latest.Load(); v != int64(exp[c.room].people) {
			wrong[c.room]++
			if seen[c.room] == nil {
				seen[c.room] = map[int64]int{}
			}
			if len(seen[c.room]) < 5 || seen[c.room][v] > 0 {
				seen[c.room][v]++
			}
		}
	}
	return checked, wrong, seen
}

// roomCheck is one room at a checkpoint.
type roomCheck struct {
	Room           string        `json:"room"`
	People         int           `json:"people"`  // expected
	Streams        int           `json:"streams"` // expected
	APICount       int           `json:"api_count"`
	APIConnections int           `json:"api_connections"`
	WrongReaders   int           `json:"wrong_readers"`
	WrongValues    map[int64]int `json:"wrong_values,omitempty"` // value -> readers
}

// checkpointResult is one quiet checkpoint.
type checkpointResult struct {
	Index     int         `json:"index"`
	AtS       float64     `json:"at_s"`
	QuietS    float64     `json:"quiet_s"`    // how long the churn was paused
	SettleS   float64     `json:"settle_s"`   // pause -> every reader right
	Settled   bool        `json:"settled"`    // within settleLimit
	Exact     bool        `json:"exact"`      // at the end of the hold: every reader right and /api/rooms agrees
	Readers   int         `json:"readers"`    // open readers checked at the end
	Stalled   int         `json:"stalled"`    // never-reading clients still counted
	ChurnOpen int         `json:"churn_open"` // churn clients open through the checkpoint
	Rooms     []roomCheck `json:"rooms"`
}

// checkpoint pauses the churn, waits for the counts to settle, holds the
// rooms quiet for cfg.Quiet (longer than the write timeout plus the
// heartbeat, so that idle streams are put to the test), and then checks
// every reader's last count and /api/rooms against the roster.
func (s *soak) checkpoint(ctx context.Context, idx int) (cp checkpointResult) {
	s.setPhase("quiet")
	start := time.Now()
	cp = checkpointResult{Index: idx, AtS: time.Since(s.base).Seconds()}
	defer func() {
		cp.QuietS = time.Since(start).Seconds()
		progress("soak: checkpoint %d: settled %v in %.1f s, exact %v (%d readers, %d stalled still counted, %d churn open)",
			idx, cp.Settled, cp.SettleS, cp.Exact, cp.Readers, cp.Stalled, cp.ChurnOpen)
	}()
	cp.Settled = s.settle(ctx, settleLimit, false)
	cp.SettleS = time.Since(start).Seconds()
	hold := time.Now().Add(s.cfg.Quiet)
	for time.Now().Before(hold) && ctx.Err() == nil && s.srv.alive() {
		sleepCtx(ctx, min(time.Second, time.Until(hold)))
		s.refreshStalled(false)
	}
	cp.Exact = s.settle(ctx, recheckLimit, true)
	exp := s.expected()
	checked, wrong, seen := s.wrongReaders(exp)
	cp.Readers, cp.Stalled = checked, s.stalledUncut()
	for _, c := range s.churn.live {
		if c.state.Load() == stOpen {
			cp.ChurnOpen++
		}
	}
	api := map[string][2]int{}
	if b, err := getBody(ctx, s.api, "https://"+s.addr+"/api/rooms?limit=1000"); err == nil {
		if a, err := parseAPIRooms(b); err == nil {
			for _, r := range a.Rooms {
				api[r.Room] = [2]int{r.Count, r.Connections}
			}
		}
	}
	for i, t := range exp {
		a := api[soakRoom(i)]
		cp.Rooms = append(cp.Rooms, roomCheck{Room: soakRoom(i), People: t.people, Streams: t.conns,
			APICount: a[0], APIConnections: a[1], WrongReaders: wrong[i], WrongValues: seen[i]})
	}
	return cp
}

// settle polls until every open reader shows its room's expected count,
// no churn client is still opening, and, if withAPI, /api/rooms agrees on
// every room's people and streams; it reports whether that happened
// within limit.
func (s *soak) settle(ctx context.Context, limit time.Duration, withAPI bool) bool {
	deadline := time.Now().Add(limit)
	for {
		s.refreshStalled(false)
		exp := s.expected()
		_, wrong, _ := s.wrongReaders(exp)
		ok := s.churn.pending() == 0 && !slices.ContainsFunc(wrong, func(n int) bool { return n > 0 })
		if ok && withAPI {
			ok = s.apiAgrees(ctx, exp)
		}
		if ok {
			return true
		}
		if time.Now().After(deadline) || ctx.Err() != nil || !s.srv.alive() {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// apiAgrees reports whether GET /api/rooms shows exp: every room's people
// and streams, and no other room.
func (s *soak) apiAgrees(ctx context.Context, exp []tally) bool {
	b, err := getBody(ctx, s.api, "https://"+s.addr+"/api/rooms?limit=1000")
	if err != nil {
		return false
	}
	a, err := parseAPIRooms(b)
	if err != nil {
		return false
	}
	got := map[string]tally{}
	for _, r := range a.Rooms {
		got[r.Room] = tally{r.Count, r.Connections}
	}
	for i, t := range exp {
		if got[soakRoom(i)] != t {
			return false
		}
		delete(got, soakRoom(i))
	}
	return len(got) == 0
}

// churnPhase runs the churn for cfg.Duration with a quiet checkpoint every
// cfg.Checkpoint and one at the end.
func (s *soak) churnPhase(ctx context.Context, res *soakResult) error {
	s.churn.init(s)
	start := time.Now()
	end := start.Add(s.cfg.Duration)
	nextCP := start.Add(s.cfg.Checkpoint)
	tick := time.NewTicker(churnTick)
	defer tick.Stop()
	for idx := 1; ; {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
		if !s.srv.alive() {
			return errServerDied
		}
		now := time.Now()
		if now.Before(nextCP) && now.Before(end) {
			s.churn.step(now)
			continue
		}
		cp := s.checkpoint(ctx, idx)
		res.Checkpoints = append(res.Checkpoints, cp)
		idx++
		if err := ctx.Err(); err != nil {
			return err
		}
		if !time.Now().Before(end) {
			return nil
		}
		for !nextCP.After(time.Now()) {
			nextCP = nextCP.Add(s.cfg.Checkpoint)
		}
		s.churn.resume()
		s.setPhase("churn")
	}
}

// closeAll closes every client (idempotent).
func (s *soak) closeAll() {
	for _, c := range s.churn.live {
		if c.close() {
			s.roster.add(c.room, c.visitor, -1)
		}
	}
	for _, c := range s.long {
		if c.close() {
			s.roster.add(c.room, c.visitor, -1)
		}
	}
	for i := range s.stalled {
		if st := s.stalled[i].Load(); st != nil {
			st.nc.Close()
		}
	}
	if !waitGroupTimeout(&s.clients, 30*time.Second) {
		progress("warning: client goroutines still running 30 s after closing")
	}
	for _, tr := range s.h2 {
		tr.CloseIdleConnections()
	}
}

// waitEmpty waits until the service holds no stream and no room (the
// grace of the last visitors over), bounded by limit.
func (s *soak) waitEmpty(ctx context.Context, limit time.Duration) (bool, error) {
	start := time.Now()
	deadline := start.Add(limit)
	for {
		m, err := s.metrics(ctx)
		if err == nil && m["presence_streams_open"] == 0 {
			if b, err := getBody(ctx, s.api, "https://"+s.addr+"/api/rooms?limit=1000"); err == nil {
				if a, err := parseAPIRooms(b); err == nil && a.Total == 0 {
					progress("soak: everyone gone %.1f s after the leave", time.Since(start).Seconds())
					return true, nil
				}
			}
		}
		if time.Now().After(deadline) {
			return false, nil
		}
		if !s.srv.alive() {
			return false, errServerDied
		}
		if err := sleepCtx(ctx, 200*time.Millisecond); err != nil {
			return false, err
		}
	}
}

// churner starts and ends the short-lived clients. Only the goroutine of
// the churn phase uses it; the counters are read by the sampler too.
type churner struct {
	s       *soak
	clock   time.Duration // churn time: wall time less the checkpoints' pauses
	last    time.Time
	started int
	live    []*soakClient // started and not yet ended or closed
	recent  [][]recentVisitor

	joins, leaves, skipped, reused, overH2 atomic.Int64
}

// recentVisitor is a visitor who left a room at churn time at.
type recentVisitor struct {
	id string
	at time.Duration
}

// churnStats sums up the churn.
type churnStats struct {
	ClockS         float64 `json:"churn_s"` // time the churn ran, pauses excluded
	Joins          int64   `json:"joins"`
	Leaves         int64   `json:"leaves"` // open streams closed at the end of their life
	JoinsPerS      float64 `json:"joins_per_s"`
	LeavesPerS     float64 `json:"leaves_per_s"`
	Skipped        int64   `json:"skipped"`         // joins not started: too many still opening
	ReusedVisitors int64   `json:"reused_visitors"` // joins with the id of a visitor who just left
	OverH2         int64   `json:"over_h2"`
}

// maxRecent bounds the visitors remembered per room for reuse.
const maxRecent = 64

func (c *churner) init(s *soak) {
	c.s = s
	c.last = time.Now()
	c.recent = make([][]recentVisitor, s.cfg.Rooms)
}

func (c *churner) resume() { c.last = time.Now() }

// pending counts churn clients still opening.
func (c *churner) pending() int {
	n := 0
	for _, cl := range c.live {
		if cl.state.Load() == stPending {
			n++
		}
	}
	return n
}

// step advances the churn clock to now: it starts the joins due (at
// cfg.Churn per second) and closes the clients whose life is over.
func (c *churner) step(now time.Time) {
	s := c.s
	c.clock += now.Sub(c.last)
	c.last = now
	due := int(c.clock.Seconds() * s.cfg.Churn)
	for ; c.started < due; c.started++ {
		if len(c.live) >= s.cfg.maxChurn() {
			c.skipped.Add(1)
			continue
		}
		c.join()
	}
	kept := c.live[:0]
	for _, cl := range c.live {
		switch {
		case cl.due <= c.clock:
			if cl.close() {
				s.roster.add(cl.room, cl.visitor, -1)
				c.leaves.Add(1)
				if cl.visitor != "" {
					r := append(c.recent[cl.room], recentVisitor{cl.visitor, c.clock})
					if len(r) > maxRecent {
						r = r[1:]
					}
					c.recent[cl.room] = r
				}
			}
		case cl.state.Load() == stFailed: // recorded when it ended
		default:
			kept = append(kept, cl)
		}
	}
	clear(c.live[len(kept):])
	c.live = kept
}

// join starts one churn client in a random room.
func (c *churner) join() {
	s := c.s
	room := mrand.IntN(s.cfg.Rooms)
	visitor := ""
	if mrand.Float64() < s.cfg.Visitors {
		if mrand.Float64() < visitorReuse {
			visitor = c.popRecent(room)
		}
		if visitor == "" {
			visitor = newVisitorID()
		} else {
			c.reused.Add(1)
		}
	}
	kind := skChurnH1
	if mrand.Float64() < s.cfg.ChurnH2 {
		kind = skChurnH2
		c.overH2.Add(1)
	}
	cl := newSoakClient(kind, room, visitor)
	cl.due = c.clock + churnLifeMin + mrand.N(churnLifeMax-churnLifeMin)
	c.live = append(c.live, cl)
	c.joins.Add(1)
	d := s.dialers[c.started%len(s.dialers)]
	s.clients.Add(1)
	if kind == skChurnH1 {
		go s.runH1(cl, d)
	} else {
		go s.runH2(cl, newH2Transport(d, s.pool), true)
	}
}

// popRecent returns, and forgets, the newest visitor who left room within
// reuseWithin and has no stream open there; "" if none.
func (c *churner) popRecent(room int) string {
	r := c.recent[room]
	for i := len(r) - 1; i >= 0; i-- {
		if c.clock-r[i].at > reuseWithin {
			break
		}
		if !c.s.roster.open(room, r[i].id) {
			id := r[i].id
			c.recent[room] = append(r[:i], r[i+1:]...)
			return id
		}
	}
	return ""
}

func (c *churner) stats() churnStats {
	st := churnStats{ClockS: c.clock.Seconds(), Joins: c.joins.Load(), Leaves: c.leaves.Load(),
		Skipped: c.skipped.Load(), ReusedVisitors: c.reused.Load(), OverH2: c.overH2.Load()}
	if st.ClockS > 0 {
		st.JoinsPerS, st.LeavesPerS = float64(st.Joins)/st.ClockS, float64(st.Leaves)/st.ClockS
	}
	return st
}

// soakSample is one point of the time series.
type soakSample struct {
	TS              float64 `json:"t_s"`
	Phase           string  `json:"phase"`
	Streams         int     `json:"streams_open"`     // the service's presence_streams_open
	Expected        int     `json:"streams_expected"` // open streams as the soak counts them (stalled included)
	LongOpen        int     `json:"long_open"`
	ChurnOpen       int     `json:"churn_open"`
	StalledUncut    int     `json:"stalled_uncut"`
	RSSKiB          int64   `json:"rss_kib"`
	Goroutines      int     `json:"goroutines"`     // the service's go_goroutines
	ServerCPU       float64 `json:"server_cpu_pct"` // of one core, since the previous sample
	ToolCPU         float64 `json:"tool_cpu_pct"`   // this load tool's
	LongDisconnects int     `json:"long_disconnects"`
	ChurnFailures   int     `json:"churn_failures"` // churn disconnects and failed opens
	Evicted         int     `json:"evicted"`        // presence_disconnects_total{reason="evicted"}
	Joins           int64   `json:"churn_joins"`
	Leaves          int64   `json:"churn_leaves"`
	MaxSilenceS     float64 `json:"max_silence_s"` // longest silence of an open long-lived stream

	cpu, toolCPU float64 // cumulative CPU seconds, for the next sample's rates
	at           time.Time
}

// evictedSeries is the metric of streams cut for a stalled write.
const evictedSeries = `presence_disconnects_total{reason="evicted"}`

// takeSample measures the service and the soak now; prev, if any, gives
// the CPU rates.
func (s *soak) takeSample(ctx context.Context, prev *soakSample) (soakSample, error) {
	m, err := s.metrics(ctx)
	if err != nil {
		return soakSample{}, err
	}
	pid := s.srv.cmd.Process.Pid
	rss, err := proc.RSS(pid)
	if err != nil {
		return soakSample{}, err
	}
	cpu, _ := proc.CPU(pid)
	toolCPU, _ := proc.CPU(os.Getpid())
	now := time.Now()
	smp := soakSample{
		TS: now.Sub(s.base).Seconds(), Streams: int(m["presence_streams_open"]), RSSKiB: rss,
		Goroutines: int(m["go_goroutines"]), Evicted: int(m[evictedSeries]),
		cpu: cpu, toolCPU: toolCPU, at: now,
		Joins: s.churn.joins.Load(), Leaves: s.churn.leaves.Load(),
	}
	if p := s.phase.Load(); p != nil {
		smp.Phase = *p
	}
	if prev != nil {
		if dt := now.Sub(prev.at).Seconds(); dt > 0 {
			smp.ServerCPU = 100 * (cpu - prev.cpu) / dt
			smp.ToolCPU = 100 * (toolCPU - prev.toolCPU) / dt
		}
	}
	s.refreshStalled(false)
	smp.StalledUncut = s.stalledUncut()
	nowNS := s.now()
	for _, c := range s.long {
		if c.state.Load() == stOpen {
			smp.LongOpen++
			smp.MaxSilenceS = max(smp.MaxSilenceS, secs(nowNS-c.lastRead.Load()))
		}
	}
	for _, t := range s.roster.tallies() {
		smp.Expected += t.conns
	}
	smp.ChurnOpen = smp.Expected - smp.LongOpen
	smp.Expected += smp.StalledUncut
	disc, fails := s.events.counts()
	smp.LongDisconnects = disc[skLongH1] + disc[skLongH2]
	smp.ChurnFailures = disc[skChurnH1] + disc[skChurnH2] + fails[skChurnH1] + fails[skChurnH2]
	return smp, nil
}

// sampleLoop records a sample every cfg.Sample until ctx ends.
func (s *soak) sampleLoop(ctx context.Context) {
	t := time.NewTicker(s.cfg.Sample)
	defer t.Stop()
	var prev *soakSample
	for {
		smp, err := s.takeSample(ctx, prev)
		if err == nil {
			s.mu.Lock()
			s.samples = append(s.samples, smp)
			s.mu.Unlock()
			prev = &smp
		} else if ctx.Err() == nil {
			progress("  sample: %v", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// finish fills in the results and the verdict.
func (s *soak) finish(res *soakResult) {
	s.mu.Lock()
	res.Samples = slices.Clone(s.samples)
	s.mu.Unlock()
	for _, smp := range res.Samples {
		res.MaxSilenceS = max(res.MaxSilenceS, smp.MaxSilenceS)
	}
	res.Churn = s.churn.stats()
	if len(res.Checkpoints) > 0 || res.Churn.ClockS > 0 {
		res.DurationS = res.Churn.ClockS
		for _, cp := range res.Checkpoints {
			res.DurationS += cp.QuietS
		}
	}
	disc, fails := s.events.counts()
	res.Disconnects, res.OpenFailed = map[string]int{}, map[string]int{}
	for k := range numSoakKinds {
		res.Disconnects[soakKindNames[k]] = disc[k]
		res.OpenFailed[soakKindNames[k]] = fails[k]
	}
	s.events.mu.Lock()
	res.EventKinds = maps.Clone(s.events.byKind)
	res.FirstEvents = slices.Clone(s.events.first)
	s.events.mu.Unlock()
	cut, opened := 0, 0
	for i := range s.stalled {
		st := s.stalled[i].Load()
		if st == nil {
			continue
		}
		opened++
		r := stalledResult{Local: st.local.String()}
		if at := st.cutAt.Load(); at > 0 {
			r.Cut, r.CutAtS = true, secs(at)
			cut++
		}
		res.Stalled = append(res.Stalled, r)
	}

	cfg := s.cfg
	add := func(name string, ok bool, format string, args ...any) {
		res.Checks = append(res.Checks, soakCheck{Name: name, OK: ok, Detail: fmt.Sprintf(format, args...)})
	}
	add("run complete", res.Error == "", "%s", firstLine(res.Error))
	wantLong := cfg.H1 + cfg.H2Conns*cfg.H2Streams
	openedLong := res.OpenedLong["long-h1"] + res.OpenedLong["long-h2"]
	add("long-lived streams opened", openedLong == wantLong && opened == cfg.Stalled,
		"%d of %d (HTTP/1.1 %d, HTTP/2 %d), never-reading %d of %d%s", openedLong, wantLong, res.OpenedLong["long-h1"], res.OpenedLong["long-h2"], opened, cfg.Stalled,
		kindsOf(res.EventKinds, "long-", "open-failed"))
	longDisc := disc[skLongH1] + disc[skLongH2]
	add("no long-lived reader disconnected", longDisc == 0 && res.Error == "",
		"%d unexpected ends (HTTP/1.1 %d, HTTP/2 %d)%s", longDisc, disc[skLongH1], disc[skLongH2], kindsOf(res.EventKinds, "long-", "disconnect"))
	churnBad := disc[skChurnH1] + disc[skChurnH2] + fails[skChurnH1] + fails[skChurnH2]
	add("no churn reader cut or refused", churnBad == 0 && (res.Churn.Joins > 0 || cfg.Churn == 0),
		"%d of %d joins (cut while open: %d, never opened: %d)%s", churnBad, res.Churn.Joins,
		disc[skChurnH1]+disc[skChurnH2], fails[skChurnH1]+fails[skChurnH2],
		kindsOf(res.EventKinds, "churn-", "disconnect")+kindsOf(res.EventKinds, "churn-", "open-failed"))
	var cutTimes []string
	for _, r := range res.Stalled {
		if r.Cut {
			cutTimes = append(cutTimes, fmt.Sprintf("%.0f", r.CutAtS))
		}
	}
	add("never-reading clients cut", cut == cfg.Stalled, "%d of %d cut by the server (seen at t = %s s)", cut, cfg.Stalled, strings.Join(cutTimes, ", "))
	evicted := int(res.Metrics[evictedSeries])
	if res.Metrics == nil && len(res.Samples) > 0 {
		evicted = res.Samples[len(res.Samples)-1].Evicted
	}
	add("evicted >= never-reading clients", evicted >= cfg.Stalled, `presence_disconnects_total{reason="evicted"} = %d, never-reading clients %d`, evicted, cfg.Stalled)
	add("only stalled writes counted as evicted", evicted == cut, "evicted %d, never-reading clients cut %d", evicted, cut)
	exact := 0
	var bad []string
	for _, cp := range res.Checkpoints {
		if cp.Exact {
			exact++
		} else {
			bad = append(bad, fmt.Sprint(cp.Index))
		}
	}
	detail := fmt.Sprintf("%d of %d checkpoints exact (every reader's last count and /api/rooms)", exact, len(res.Checkpoints))
	if len(bad) > 0 {
		detail += "; not exact: " + strings.Join(bad, ", ")
	}
	add("counts exact at every checkpoint", len(res.Checkpoints) > 0 && exact == len(res.Checkpoints), "%s", detail)
	b, e, c := res.Baseline, res.End, res.Cold
	add("RSS back within 10% of the start (after the warm-up wave)", e.RSSKiB > 0 && float64(e.RSSKiB) <= growthLimit*float64(b.RSSKiB),
		"%d KiB at the end vs %d KiB at the start (%s), %.0f s after everyone left; a cold process had %d KiB (%s)", e.RSSKiB, b.RSSKiB, pct(float64(e.RSSKiB), float64(b.RSSKiB)), res.EndWaitS,
		c.RSSKiB, pct(float64(e.RSSKiB), float64(c.RSSKiB)))
	add("goroutines back within 10% of the start (cold)", e.Goroutines > 0 && float64(e.Goroutines) <= growthLimit*float64(c.Goroutines),
		"%d at the end vs %d at the cold start (%s), %d after the warm-up wave", e.Goroutines, c.Goroutines, pct(float64(e.Goroutines), float64(c.Goroutines)), b.Goroutines)
	if e.RSSKiB > 0 && float64(e.RSSKiB) > growthLimit*float64(c.RSSKiB) {
		res.note("cold", fmt.Sprintf("RSS at the end is %s of a cold process's (%d KiB vs %d KiB): what the Go runtime keeps after its first peak (a descriptor per goroutine it ever ran, span and GC metadata, code pages touched), the same after every wave", pct(float64(e.RSSKiB), float64(c.RSSKiB)), e.RSSKiB, c.RSSKiB))
	}
	res.Pass = !slices.ContainsFunc(res.Checks, func(c soakCheck) bool { return !c.OK })
	if res.DurationS < 600 {
		res.note("duration", fmt.Sprintf("a short run (%.0f s of churn and checkpoints); the issue asks for at least 10 minutes", res.DurationS))
	}
}

// kindsOf lists the event counts of clients whose kind starts with prefix,
// for what (disconnect or open-failed).
func kindsOf(m map[string]int, prefix, what string) string {
	var parts []string
	for k, v := range m {
		if strings.HasPrefix(k, prefix) && strings.Contains(k, " "+what+" ") {
			parts = append(parts, fmt.Sprintf("%s: %d", k, v))
		}
	}
	if len(parts) == 0 {
		return ""
	}
	sort.Strings(parts)
	return "; " + strings.Join(parts, ", ")
}

func pct(a, b float64) string {
	if b == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%+.1f%%", 100*(a/b-1))
}

func firstLine(s string) string {
	first, _, _ := strings.Cut(s, "\n")
	return first
}
