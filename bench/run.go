package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/presence/presence/bench/proc"
)

// Result is what one run (one target, one N) measured. Durations that timed
// out are reported as -1 with the matching OK flag false.
type Result struct {
	Target string `json:"target"`
	N      int    `json:"n"`
	Error  string `json:"error,omitempty"`
	// LoadAvg is /proc/loadavg (1, 5, 15 min) at the start of the run: other
	// work on the machine competes with server and load tool.
	LoadAvg string `json:"loadavg_start"`

	Opened       int            `json:"opened"`         // clients that got their first event in the ramp
	Failed       int            `json:"failed"`         // failed connections over the whole run
	FailedByKind map[string]int `json:"failed_by_kind"` // dial, status, ended, timeout, protocol

	RampS          float64 `json:"ramp_s"`           // first dial -> last client's first event
	ConvergeRampS  float64 `json:"converge_ramp_s"`  // last first event -> all clients at N
	ConvergeRampOK bool    `json:"converge_ramp_ok"` //
	Dropped        int     `json:"dropped"`          // clients closed in the half drop
	DropCloseMs    float64 `json:"drop_close_ms"`    // time our close loop took
	ConvergeDropS  float64 `json:"converge_drop_s"`  // first close -> all remaining at N-dropped
	ConvergeDropOK bool    `json:"converge_drop_ok"` //

	FanoutSamples   int       `json:"fanout_samples"` // pooled per-client latencies
	FanoutP50Ms     float64   `json:"fanout_p50_ms"`
	FanoutP99Ms     float64   `json:"fanout_p99_ms"`
	FanoutMeanMaxMs float64   `json:"fanout_mean_max_ms"`
	ProbeMaxMs      []float64 `json:"probe_max_ms"` // per probe step: join, leave, join, ...
	ProbeKinds      []string  `json:"probe_kinds"`
	ProbeTimeouts   int       `json:"probe_timeouts"`

	FanoutServerCPUS float64 `json:"fanout_server_cpu_s"` // server CPU over all probes
	FanoutClientCPUS float64 `json:"fanout_client_cpu_s"` // this tool's CPU over all probes

	RSSBeforeKiB   int64   `json:"rss_before_kib"`
	RSSAfterKiB    int64   `json:"rss_after_kib"`
	RSSPerConnKiB  float64 `json:"rss_per_conn_kib"`
	RampCPUS       float64 `json:"ramp_cpu_s"`
	CPUMsPerClient float64 `json:"cpu_ms_per_client"`

	// Target "visitors" only: clients are tabs, this many per visitor cookie.
	Tabs int `json:"tabs,omitempty"`

	// Target "cluster" only: several presence nodes sharing one Redis.
	Nodes            int       `json:"nodes,omitempty"`
	RedisRampPerNode []float64 `json:"redis_cmds_per_s_ramp,omitempty"` // per node, during the ramp (churn)
	RedisRestPerNode []float64 `json:"redis_cmds_per_s_rest,omitempty"` // per node, at rest
	RedisServerRest  float64   `json:"redis_server_cmds_per_s_rest,omitempty"`
	RedisServerRamp  float64   `json:"redis_server_cmds_per_s_ramp,omitempty"` // as redis-server counts, all nodes
	KillConvergeS    float64   `json:"kill_converge_s,omitempty"`              // kill -9 of one node -> every other client right
	KillConvergeOK   bool      `json:"kill_converge_ok,omitempty"`
	KilledClients    int       `json:"killed_clients,omitempty"`
}

type runConfig struct {
	target  string
	bin     string
	args    []string
	nodes   int      // > 1: a cluster of this many nodes and one Redis
	redis   string   // redis-server binary, for a cluster
	nodeEnv []string // extra environment of each cluster node
	tabs    int      // > 0: clients are browser tabs, this many per visitor cookie
	tmp     string   // scratch directory
	n       int
	rate    float64
	probes  int
	sources int
	logPath string
	// rampOnly ends the run once the ramp's CPU and memory are measured:
	// no fan-out probes, no half drop (the curve target).
	rampOnly bool
}

const (
	convergeTimeout = 30 * time.Second
	probeTimeout    = 10 * time.Second
	pollEvery       = 5 * time.Millisecond
	probeJitter     = 200 * time.Millisecond // two 100 ms ticks: uniform phase
)

// load is the set of clients of one run.
type load struct {
	base    time.Time
	srvs    []*server // the nodes; all but a killed one must stay up
	clients []client
	dialers []*net.Dialer
	alive   atomic.Int64   // clients in stOpen
	tabs    []atomic.Int32 // visitors target: open clients per person
	people  atomic.Int64   // visitors target: persons with an open client
	fails   [numFail]atomic.Int64
	logged  atomic.Int64
	ready   sync.WaitGroup // one per client until open or failed
	exited  sync.WaitGroup // one per client until its socket is closed
	poller  *poller        // reads the streams once open
}

func (l *load) now() int64 { return int64(time.Since(l.base)) }

// opened counts an open client, and its person if it is a new one.
func (l *load) opened(c *client) {
	l.alive.Add(1)
	if c.person >= 0 && l.tabs[c.person].Add(1) == 1 {
		l.people.Add(1)
	}
}

// left counts a client that was open and is no more.
func (l *load) left(c *client) {
	l.alive.Add(-1)
	if c.person >= 0 && l.tabs[c.person].Add(-1) == 0 {
		l.people.Add(-1)
	}
}

// want is the count every client should show: one per open client, or for
// the visitors target one per person with an open tab. (A person's last tab
// closing shows only after the service's grace, so the visitors target's
// half drop keeps every person: each has a tab left.)
func (l *load) want() int64 {
	if l.tabs != nil {
		return l.people.Load()
	}
	return l.alive.Load()
}

func (l *load) hooks() streamHooks {
	return streamHooks{
		now: l.now,
		onFirst: func(c *client) {
			l.opened(c)
			l.ready.Done()
		},
		onExit: l.exited.Done,
		poller: l.poller,
		onFail: func(c *client, kind int, err error, wasOpen bool) {
			if kind >= 0 {
				l.fails[kind].Add(1)
				if l.logged.Add(1) <= 5 {
					progress("  client failure (%s): %v", failNames[kind], err)
				}
			}
			if wasOpen {
				l.left(c)
			} else {
				l.ready.Done()
			}
		},
	}
}

func (l *load) failed() (int, map[string]int) {
	total, m := 0, map[string]int{}
	for k := range l.fails {
		v := int(l.fails[k].Load())
		total += v
		if v > 0 {
			m[failNames[k]] = v
		}
	}
	return total, m
}

// teardown stops the server first (so that the server side of each
// connection does the active close and holds TIME_WAIT, not our source
// ports), then closes every client and waits for the client goroutines.
func (l *load) teardown() {
	for i := range l.clients {
		c := &l.clients[i]
		c.state.CompareAndSwap(stOpen, stClosed)
		c.state.CompareAndSwap(stPending, stClosed)
	}
	for _, s := range l.srvs {
		s.stop()
	}
	for i := range l.clients {
		l.clients[i].closeByUs()
	}
	if !waitGroupTimeout(&l.exited, 15*time.Second) {
		progress("warning: client sockets still open after 15s")
	}
	l.poller.close()
}

func waitGroupTimeout(wg *sync.WaitGroup, d time.Duration) bool {
	return waitGroupCtx(context.Background(), wg, d) == nil
}

// waitGroupCtx waits for wg for at most d; it returns ctx's error if ctx
// ends first, and context.DeadlineExceeded if d passes.
func waitGroupCtx(ctx context.Context, wg *sync.WaitGroup, d time.Duration) error {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return context.DeadlineExceeded
	}
}

var errServerDied = errors.New("server process exited during the run")

// waitAll polls every 5 ms until every open client's latest value equals
// want(), or until timeout. It returns the last changedAt among open clients
// (the moment the last of them got the value).
func (l *load) waitAll(ctx context.Context, want func() int64, timeout time.Duration) (int64, bool, error) {
	deadline := time.Now().Add(timeout)
	for {
		w := want()
		done, last := true, int64(0)
		for i := range l.clients {
			c := &l.clients[i]
			if c.state.Load() != stOpen {
				continue
			}
			if c.latest.Load() != w {
				done = false
				break
			}
			last = max(last, c.changedAt.Load())
		}
		if done {
			return last, true, nil
		}
		for _, s := range l.srvs {
			if !s.killed && !s.alive() {
				return 0, false, errServerDied
			}
		}
		if err := ctx.Err(); err != nil {
			return 0, false, err
		}
		if time.Now().After(deadline) {
			return 0, false, nil
		}
		time.Sleep(pollEvery)
	}
}

// converge waits until every open client has want() and returns the
// seconds from since until the last of them got it, and whether all did
// before the timeout.
func (l *load) converge(ctx context.Context, want func() int64, since int64, after string) (float64, bool, error) {
	last, ok, err := l.waitAll(ctx, want, convergeTimeout)
	if err != nil || !ok {
		if err == nil {
			progress("  convergence after %s: timeout after %v", after, convergeTimeout)
		}
		return 0, false, err
	}
	s := secs(max(0, last-since))
	progress("  converged after %s: %.3f s", after, s)
	return s, true, nil
}

func secs(ns int64) float64 { return float64(ns) / 1e9 }
func msec(ns int64) float64 { return float64(ns) / 1e6 }

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// doRun performs one run against a fresh server process.
func doRun(ctx context.Context, cfg runConfig) (res Result, err error) {
	res = Result{Target: cfg.target, N: cfg.n, ConvergeRampS: -1, ConvergeDropS: -1, LoadAvg: loadAvg()}
	srvs, rds, err := startTargets(ctx, cfg)
	if err != nil {
		return res, err
	}
	if rds != nil {
		defer rds.stop()
	}
	srv := srvs[0]
	res.Nodes = len(srvs)
	res.Tabs = cfg.tabs
	pl, err := newPoller(cfg.n)
	if err != nil {
		for _, s := range srvs {
			s.stop()
		}
		return res, err
	}
	l := &load{base: time.Now(), srvs: srvs, clients: make([]client, cfg.n), poller: pl}
	defer func() {
		l.teardown()
		res.Failed, res.FailedByKind = l.failed()
		if err != nil {
			err = fmt.Errorf("%w\n--- server log tail ---\n%s", err, srv.logTail(2000))
		}
	}()
	if cfg.tabs > 0 {
		l.tabs = make([]atomic.Int32, (cfg.n+cfg.tabs-1)/cfg.tabs)
	}
	for i := range l.clients {
		l.clients[i].latest.Store(-1)
		l.clients[i].id = int32(i)
		l.clients[i].person = -1
		if cfg.tabs > 0 {
			l.clients[i].person = int32(i / cfg.tabs)
		}
	}
	for s := 0; s < cfg.sources; s++ {
		l.dialers = append(l.dialers, newDialer(net.IPv4(127, 0, 0, byte(2+s))))
	}
	cpu0, rss0, err := l.usage()
	if err != nil {
		return res, err
	}
	cmds0 := l.redisCommands(ctx)
	var srvCmds0 float64
	if rds != nil {
		srvCmds0 = rds.commands()
	}
	rampT0 := time.Now()

	// 1. Ramp, paced at cfg.rate connects per second.
	progress("  ramp: %d clients at %.0f/s over %d source addresses", cfg.n, cfg.rate, cfg.sources)
	h := l.hooks()
	rampStart := l.now()
	start := time.Now()
	started := 0
	for started < cfg.n {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		for _, s := range srvs {
			if !s.alive() {
				return res, errServerDied
			}
		}
		due := min(cfg.n, int(time.Since(start).Seconds()*cfg.rate)+1)
		for ; started < due; started++ {
			c, d := &l.clients[started], l.dialers[started%len(l.dialers)]
			l.ready.Add(1)
			l.exited.Add(1)
			go runClient(c, d, srvs[started%len(srvs)].addr, h)
		}
		time.Sleep(time.Millisecond)
	}
	rampLimit := time.Duration(float64(cfg.n)/cfg.rate*float64(time.Second)) + 2*openTimeout
	if err := waitGroupCtx(ctx, &l.ready, rampLimit); err != nil {
		if ctx.Err() != nil {
			return res, ctx.Err()
		}
		progress("  warning: ramp not settled after %v", rampLimit)
	}
	var lastFirst int64
	for i := range l.clients {
		c := &l.clients[i]
		if c.state.Load() == stOpen {
			res.Opened++
			lastFirst = max(lastFirst, c.firstAt.Load())
		}
	}
	if res.Opened == 0 {
		return res, errors.New("no client connected")
	}
	res.RampS = secs(lastFirst - rampStart)
	f, _ := l.failed()
	progress("  ramp done: %d open, %d failed, %.2f s", res.Opened, f, res.RampS)

	// 2. Convergence after the ramp.
	want := l.want
	if res.ConvergeRampS, res.ConvergeRampOK, err = l.converge(ctx, want, lastFirst, "ramp"); err != nil {
		return res, err
	}

	// 3. Server CPU and memory for the ramp.
	cpu1, rss1, err := l.usage()
	if err != nil {
		return res, err
	}
	if rds != nil {
		c0, s0, t0 := l.redisCommands(ctx), rds.commands(), time.Now()
		res.RedisRampPerNode = rates(cmds0, c0, t0.Sub(rampT0))
		res.RedisServerRamp = (s0 - srvCmds0) / t0.Sub(rampT0).Seconds()
		progress("  redis calls per node during the ramp: %s /s (redis-server counted %.0f commands/s in all)", fmtRates(res.RedisRampPerNode), res.RedisServerRamp)
		// At rest: nothing changes for a while.
		if err := sleepCtx(ctx, restSpan); err != nil {
			return res, err
		}
		res.RedisRestPerNode = rates(c0, l.redisCommands(ctx), time.Since(t0))
		res.RedisServerRest = float64(rds.commands()-s0) / time.Since(t0).Seconds()
		progress("  redis commands per node at rest: %s /s (redis-server counted %.1f /s in all, with our own INFO calls)",
			fmtRates(res.RedisRestPerNode), res.RedisServerRest)
	}
	open := l.alive.Load()
	res.RampCPUS = cpu1 - cpu0
	res.RSSBeforeKiB, res.RSSAfterKiB = rss0, rss1
	if open > 0 {
		res.CPUMsPerClient = res.RampCPUS * 1000 / float64(open)
		res.RSSPerConnKiB = float64(rss1-rss0) / float64(open)
	}
	progress("  server: ramp CPU %.2f s, RSS %d -> %d KiB", res.RampCPUS, rss0, rss1)
	if cfg.rampOnly {
		return res, nil
	}

	// 4. Fan-out latency at rest.
	self := os.Getpid()
	scpu0, _ := l.cpu()
	ccpu0, _ := proc.CPU(self)
	if err := l.fanout(ctx, cfg, &res); err != nil {
		return res, err
	}
	scpu1, _ := l.cpu()
	ccpu1, _ := proc.CPU(self)
	res.FanoutServerCPUS, res.FanoutClientCPUS = scpu1-scpu0, ccpu1-ccpu0
	progress("  fan-out CPU: server %.2f s, load tool %.2f s", res.FanoutServerCPUS, res.FanoutClientCPUS)

	// 5. Half drop: close every second open client at once.
	var victims []*client
	for i := range l.clients {
		if i%2 == 1 && l.clients[i].state.Load() == stOpen {
			victims = append(victims, &l.clients[i])
		}
	}
	dropStart := l.now()
	for _, c := range victims {
		if c.closeByUs() {
			l.left(c)
			res.Dropped++
		}
	}
	res.DropCloseMs = msec(l.now() - dropStart)
	progress("  half drop: closed %d clients in %.1f ms", res.Dropped, res.DropCloseMs)
	if res.ConvergeDropS, res.ConvergeDropOK, err = l.converge(ctx, want, dropStart, "half drop"); err != nil {
		return res, err
	}
	if len(srvs) > 1 {
		if err := l.killOne(ctx, &res); err != nil {
			return res, err
		}
	}
	return res, nil
}

// restSpan is how long a cluster is watched at rest for its Redis traffic.
const restSpan = 10 * time.Second

// killOne kills the last node with SIGKILL and measures how long the other
// nodes' clients take to show the count without its streams. Its clients
// are set aside first, so that their broken streams are not failures.
func (l *load) killOne(ctx context.Context, res *Result) error {
	victim := l.srvs[len(l.srvs)-1]
	for i := range l.clients {
		c := &l.clients[i]
		if i%len(l.srvs) == len(l.srvs)-1 && c.state.CompareAndSwap(stOpen, stClosed) {
			l.left(c)
			res.KilledClients++
		}
	}
	victim.killed = true
	start := l.now()
	victim.stop()
	progress("  kill -9 of node %d (%d clients)", len(l.srvs), res.KilledClients)
	var err error
	res.KillConvergeS, res.KillConvergeOK, err = l.converge(ctx, l.want, start, "kill -9")
	return err
}

// cpu is the servers' CPU seconds so far (a killed one no longer counts).
func (l *load) cpu() (float64, error) { return sumLive(l, proc.CPU) }

// rss is the servers' resident memory in KiB.
func (l *load) rss() (int64, error) { return sumLive(l, proc.RSS) }

// usage is the servers' CPU seconds and resident KiB.
func (l *load) usage() (float64, int64, error) {
	cpu, err := l.cpu()
	if err != nil {
		return 0, 0, err
	}
	rss, err := l.rss()
	return cpu, rss, err
}

// sumLive adds up f of every server process but a killed one.
func sumLive[T int64 | float64](l *load, f func(pid int) (T, error)) (T, error) {
	var sum T
	for _, s := range l.srvs {
		if s.killed {
			continue
		}
		v, err := f(s.cmd.Process.Pid)
		if err != nil {
			return 0, err
		}
		sum += v
	}
	return sum, nil
}

// redisCommands reads presence_redis_commands_total from every node.
func (l *load) redisCommands(ctx context.Context) []float64 {
	out := make([]float64, len(l.srvs))
	for i, s := range l.srvs {
		out[i] = s.metric(ctx, "presence_redis_commands_total")
	}
	return out
}

func rates(a, b []float64, d time.Duration) []float64 {
	out := make([]float64, len(a))
	for i := range a {
		out[i] = (b[i] - a[i]) / d.Seconds()
	}
	return out
}

func fmtRates(xs []float64) string {
	var parts []string
	for _, x := range xs {
		parts = append(parts, fmt.Sprintf("%.1f", x))
	}
	return strings.Join(parts, ", ")
}

// fanout runs cfg.probes joins and leaves of one extra probe connection.
// Join latency of a client: from just before the probe's request is written
// to the moment that client's latest value became the new count. Leave
// latency: from just before the probe's socket is closed to the same.
func (l *load) fanout(ctx context.Context, cfg runConfig, res *Result) error {
	var pooled []int64
	var sumMax float64
	// collect records each open client's latency since t0 and the maximum.
	collect := func(t0 int64, kind string) {
		var mx int64
		for i := range l.clients {
			c := &l.clients[i]
			if c.state.Load() == stOpen {
				d := max(0, c.changedAt.Load()-t0)
				pooled = append(pooled, d)
				mx = max(mx, d)
			}
		}
		res.ProbeMaxMs = append(res.ProbeMaxMs, msec(mx))
		res.ProbeKinds = append(res.ProbeKinds, kind)
		sumMax += msec(mx)
	}
	d := l.dialers[0]
	for p := 0; p < cfg.probes; p++ {
		// Random pause so probes hit random phases of any server tick.
		if err := sleepCtx(ctx, rand.N(probeJitter)); err != nil {
			return err
		}
		probe := &client{person: -1} // anonymous: its leave shows at once
		probe.latest.Store(-1)
		got := make(chan bool, 1)
		var probeExited sync.WaitGroup
		probeExited.Add(1)
		go func() {
			defer probeExited.Done()
			runClient(probe, d, l.srvs[p%len(l.srvs)].addr, streamHooks{
				now:     l.now,
				onFirst: func(*client) { got <- true },
				onFail: func(_ *client, kind int, err error, wasOpen bool) {
					if kind >= 0 {
						progress("  probe failure (%s): %v", failNames[kind], err)
					}
					if !wasOpen {
						got <- false
					}
				},
			})
		}()
		// Join.
		_, ok, err := l.waitAll(ctx, func() int64 { return l.want() + 1 }, probeTimeout)
		if err != nil {
			probe.closeByUs()
			return err
		}
		if ok {
			collect(probe.requestAt.Load(), "join")
		} else {
			res.ProbeTimeouts++
			progress("  probe %d join: timeout", p+1)
		}
		select { // the probe itself must be open or settled before leaving
		case <-got:
		case <-time.After(probeTimeout):
		}
		if err := sleepCtx(ctx, rand.N(probeJitter)); err != nil {
			probe.closeByUs()
			return err
		}
		// Leave.
		t0 := l.now()
		probe.closeByUs()
		_, ok, err = l.waitAll(ctx, l.want, probeTimeout)
		if err != nil {
			return err
		}
		if ok {
			collect(t0, "leave")
		} else {
			res.ProbeTimeouts++
			progress("  probe %d leave: timeout", p+1)
		}
		waitGroupTimeout(&probeExited, 5*time.Second)
	}
	res.FanoutSamples = len(pooled)
	if len(pooled) > 0 {
		slices.Sort(pooled)
		res.FanoutP50Ms = msec(percentile(pooled, 0.50))
		res.FanoutP99Ms = msec(percentile(pooled, 0.99))
		res.FanoutMeanMaxMs = sumMax / float64(len(res.ProbeMaxMs))
	}
	progress("  fan-out: %d samples, p50 %.1f ms, p99 %.1f ms, mean max %.1f ms, %d probe timeouts",
		res.FanoutSamples, res.FanoutP50Ms, res.FanoutP99Ms, res.FanoutMeanMaxMs, res.ProbeTimeouts)
	return nil
}

// percentile returns the nearest-rank p-quantile of sorted xs.
func percentile(xs []int64, p float64) int64 {
	i := int(float64(len(xs))*p+0.999999999) - 1
	return xs[min(max(i, 0), len(xs)-1)]
}
