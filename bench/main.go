// Command bench is the load tool of the presence service: it builds the
// service and a minimal net/http baseline ("floor", ./floor), starts each as
// a fresh subprocess per run, opens N SSE streams to it over loopback and
// measures ramp time, convergence, fan-out latency, server CPU and memory.
// A third server, the hijacking "sketch" (./sketch), is the lower bound of
// a stream's memory; the curve target compares the three over N.
// See README.md in this folder for what each number means.
//
// Run it from the repository root:
//
//	go run ./bench
//	go run ./bench --targets floor --n 500,1500
//	go run ./bench --targets soak --soak-duration 2m
//	go run ./bench --targets curve --n 1000,3000
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, time.Now().Format("15:04:05 ")+format+"\n", args...)
}

type options struct {
	ns           []int
	rate         float64
	probes       int
	targets      []string
	sources      int
	presenceArgs []string
	jsonPath     string
	svgPath      string
	cpuProfile   string
	nodes        int
	nodeEnv      []string
	tabs         int
	soak         soakConfig
	watch        watchConfig
	webhooks     webhookConfig
}

func parseFlags() (options, error) {
	var o options
	nList := flag.String("n", "5000,15000", "comma-separated numbers of clients, one run per value and target")
	flag.Float64Var(&o.rate, "rate", 3000, "ramp rate, connects per second")
	flag.IntVar(&o.probes, "probes", 20, "fan-out probes: this many joins and as many leaves")
	targets := flag.String("targets", "presence,floor", "comma-separated targets: presence, floor, sketch (the floor hijacking its connections: a stream's lower bound), visitors (presence with clients as browser tabs, --tabs per visitor cookie), cluster (--nodes presence nodes sharing one redis-server), watch (alone: following many rooms over one stream against a stream per room, see --watch*), webhooks (alone: webhooks off and on, see --webhook-*), soak (alone: a long run of HTTP/1.1 and HTTP/2 readers over TLS, churn and never-reading clients, see --soak-*), curve (alone: RSS per stream against N of presence, floor and sketch; --n defaults to 1000,3000,...,19000, --json to docs/bench-curve.json, --svg to docs/bench-curve.svg)")
	flag.IntVar(&o.tabs, "tabs", 3, "tabs per visitor cookie of the visitors target")
	flag.IntVar(&o.nodes, "nodes", 3, "nodes of the cluster target")
	nodeEnv := flag.String("node-env", "GOMAXPROCS=1", "extra environment of each cluster node (split on spaces): by default one core each, as three nodes share this machine's two")
	flag.IntVar(&o.sources, "sources", 4, "number of loopback source addresses 127.0.0.2, 127.0.0.3, ...")
	pargs := flag.String("presence-args", "", "extra arguments appended to the presence command line (split on spaces)")
	flag.StringVar(&o.jsonPath, "json", "", "write the raw results as JSON to this file")
	flag.StringVar(&o.svgPath, "svg", "docs/bench-fanout.svg", "write the chart here (relative paths are relative to the repository root; empty: no chart)")
	flag.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of this tool (not the servers) here")
	sk := &o.soak
	flag.DurationVar(&sk.Duration, "soak-duration", 10*time.Minute, "soak: how long the churn runs, quiet checkpoints included")
	flag.IntVar(&sk.H1, "soak-h1", 5000, "soak: long-lived readers over HTTP/1.1 (TLS), a connection each")
	flag.IntVar(&sk.H2Conns, "soak-h2-conns", 50, "soak: HTTP/2 connections of long-lived readers")
	flag.IntVar(&sk.H2Streams, "soak-h2-streams", 10, "soak: long-lived streams per HTTP/2 connection (a browser's tabs)")
	flag.IntVar(&sk.Rooms, "soak-rooms", 5, "soak: rooms (room 0 is the busiest and holds the never-reading clients)")
	flag.Float64Var(&sk.Churn, "soak-churn", 50, "soak: short-lived clients started per second; each leaves after 1-20 s, so as many leave")
	flag.Float64Var(&sk.ChurnH2, "soak-churn-h2", 0.2, "soak: share of churn clients over HTTP/2 (a connection each)")
	flag.Float64Var(&sk.Visitors, "soak-visitors", 0.3, "soak: share of churn clients with a visitor id (half of them reuse the id of a visitor who just left)")
	flag.IntVar(&sk.Stalled, "soak-stalled", 5, "soak: clients that never read, which the server must cut")
	flag.DurationVar(&sk.Checkpoint, "soak-checkpoint", time.Minute, "soak: a quiet checkpoint this often, and one at the end")
	flag.DurationVar(&sk.Quiet, "soak-quiet", 20*time.Second, "soak: how long each checkpoint holds the rooms quiet once settled (longer than --write-timeout plus --heartbeat)")
	flag.DurationVar(&sk.Sample, "soak-sample", 5*time.Second, "soak: time-series interval")
	flag.DurationVar(&sk.Settle, "soak-settle", 6*time.Minute, "soak: longest wait, once everyone left, for RSS and goroutines to come back (Go returns an idle heap only after its periodic GCs, 2 minutes apart, and pooled buffers only after two)")
	flag.Float64Var(&sk.RampRate, "soak-ramp", 1000, "soak: long-lived streams opened per second at the start")
	flag.StringVar(&sk.JSONPath, "soak-json", "docs/bench-soak.json", "soak: results and time series as JSON (relative to the repository root; empty: none)")
	flag.StringVar(&sk.SVGPath, "soak-svg", "docs/bench-soak.svg", "soak: chart over time (relative to the repository root; empty: none)")
	wc := &o.watch
	watchers := flag.String("watchers", "500,1000,2000", "watch: watchers of the /watch way, one run per value (the one-stream-per-room way runs once, with what --watch-budget holds)")
	flag.IntVar(&wc.Rooms, "watch-rooms", 1000, "watch: rooms")
	flag.IntVar(&wc.Follow, "watch-follow", 50, "watch: rooms each watcher follows")
	flag.IntVar(&wc.Present, "watch-present", 5000, "watch: streams present in the rooms, spread evenly")
	flag.IntVar(&wc.Budget, "watch-budget", 18500, "watch: streams of the one-stream-per-room run, present ones included (the server's default cap is 19,000)")
	flag.Float64Var(&wc.Churn, "watch-churn", 100, "watch: present streams replaced per second (a leave and a join in random rooms)")
	flag.DurationVar(&wc.ChurnTime, "watch-churn-time", 10*time.Second, "watch: length of each churn phase")
	flag.StringVar(&wc.SVGPath, "watch-svg", "docs/bench-watch.svg", "watch: chart of the per-unit costs (relative to the repository root; empty: none)")
	flag.IntVar(&o.webhooks.Streams, "webhook-streams", 15000, "webhooks: signed-in streams, each a person of its own")
	flag.IntVar(&o.webhooks.Rooms, "webhook-rooms", 5000, "webhooks: rooms the streams are spread over")
	flag.StringVar(&o.webhooks.JSONPath, "webhook-json", "docs/bench-webhooks.json", "webhooks: results as JSON (relative to the repository root; empty: none)")
	flag.Parse()
	if strings.TrimSpace(*targets) == "curve" {
		curveDefaults(nList, &o.jsonPath, &o.svgPath)
	}
	for _, f := range strings.Split(*watchers, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return o, fmt.Errorf("--watchers: bad value %q", f)
		}
		wc.Watchers = append(wc.Watchers, n)
	}
	if flag.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments: %q", flag.Args())
	}
	for _, f := range strings.Split(*nList, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 2 {
			return o, fmt.Errorf("--n: bad value %q (need integers >= 2)", f)
		}
		o.ns = append(o.ns, n)
	}
	for _, t := range strings.Split(*targets, ",") {
		t = strings.TrimSpace(t)
		if !slices.Contains([]string{"presence", "floor", "sketch", "cluster", "visitors", "soak", "watch", "webhooks", "curve"}, t) {
			return o, fmt.Errorf("--targets: unknown target %q", t)
		}
		if !slices.Contains(o.targets, t) {
			o.targets = append(o.targets, t)
		}
	}
	for _, alone := range []string{"soak", "watch", "webhooks", "curve"} {
		if slices.Contains(o.targets, alone) && len(o.targets) > 1 {
			return o, fmt.Errorf("--targets: %s runs alone", alone)
		}
	}
	o.soak.Sources = o.sources
	wc.Sources, wc.Rate, wc.Probes = o.sources, o.rate, o.probes
	o.webhooks.Sources, o.webhooks.Rate = o.sources, o.rate
	switch {
	case o.rate <= 0 || o.rate > 100000:
		return o, errors.New("--rate must be in (0, 100000]")
	case o.probes < 0 || o.probes > 1000:
		return o, errors.New("--probes must be in [0, 1000]")
	case o.sources < 1 || o.sources > 250:
		return o, errors.New("--sources must be in [1, 250]")
	case o.tabs < 1 || o.tabs > 100:
		return o, errors.New("--tabs must be in [1, 100]")
	case o.nodes < 2 || o.nodes > 20:
		return o, errors.New("--nodes must be in [2, 20]")
	}
	o.presenceArgs = strings.Fields(*pargs)
	o.nodeEnv = strings.Fields(*nodeEnv)
	return o, nil
}

// raiseNofile sets the soft RLIMIT_NOFILE to the hard limit and returns it.
func raiseNofile() (uint64, error) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0, err
	}
	rl.Cur = rl.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0, err
	}
	return rl.Cur, nil
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run() error {
	o, err := parseFlags()
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	if o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}

	nofile, err := raiseNofile()
	if err != nil {
		return fmt.Errorf("raise RLIMIT_NOFILE: %w", err)
	}
	if o.targets[0] == "soak" {
		if err := o.soak.check(nofile); err != nil {
			return err
		}
		return runSoakTarget(ctx, o)
	}
	if o.targets[0] == "watch" {
		return runWatchTarget(ctx, o, nofile)
	}
	if o.targets[0] == "webhooks" {
		if uint64(o.webhooks.Streams)+100 > nofile {
			return fmt.Errorf("--webhook-streams %d needs more open files than the %d this process may have", o.webhooks.Streams, nofile)
		}
		return runWebhooksTarget(ctx, o, o.webhooks)
	}
	curve := o.targets[0] == "curve" // the three single servers, ramps only
	if curve {
		o.targets, o.probes = slices.Clone(curveTargets), 0
	}
	// Clients, one probe, the health check and a margin for the runtime.
	if maxN := slices.Max(o.ns); uint64(maxN)+100 > nofile {
		return fmt.Errorf("N=%d needs more than the %d open files this process may have; use N <= %d", maxN, nofile, nofile-100)
	}
	if per := (slices.Max(o.ns) + o.sources - 1) / o.sources; per > 25000 {
		return fmt.Errorf("%d connections per source address is too many for ~28,000 ephemeral ports; raise --sources", per)
	}

	root, err := moduleRoot(ctx)
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "presence-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	bins := map[string]string{} // presence (every target but floor and sketch), floor and sketch
	var redisBin string
	for _, t := range o.targets {
		if t == "cluster" {
			if redisBin, err = exec.LookPath("redis-server"); err != nil {
				return errors.New("target cluster needs redis-server (Debian: apt-get install -y redis-server)")
			}
		}
		name, pkg := targetPackage(t)
		if bins[name] != "" {
			continue
		}
		progress("building %s (%s)", name, pkg)
		bins[name] = filepath.Join(tmp, name)
		if err := build(ctx, root, bins[name], pkg); err != nil {
			return err
		}
	}
	var presenceExtra []string
	if bins["presence"] != "" {
		presenceExtra = append([]string{"--log-level", "error"}, o.presenceArgs...)
	}

	env := collectEnv(o)
	env.Presence = presenceExtra
	if slices.Contains(o.targets, "cluster") {
		env.NodeEnv = o.nodeEnv
	}
	env.Source = sourceID(ctx, root)
	var results []Result
	failed := false
	// N outer, targets inner: runs compared at the same N are close in time.
	for _, n := range o.ns {
		for _, t := range o.targets {
			if ctx.Err() != nil {
				break
			}
			cfg := runConfig{
				target: t, bin: bins["presence"], args: presenceExtra, n: n, rate: o.rate, probes: o.probes,
				sources: o.sources, logPath: filepath.Join(tmp, fmt.Sprintf("%s-%d.log", t, n)), rampOnly: curve,
			}
			switch t {
			case "floor", "sketch":
				cfg.bin, cfg.args = bins[t], nil
			case "visitors":
				cfg.tabs = o.tabs
			case "cluster":
				cfg.nodes, cfg.redis, cfg.tmp, cfg.nodeEnv = o.nodes, redisBin, tmp, o.nodeEnv
			}
			progress("run: target=%s N=%d (load average %s)", t, n, loadAvg())
			res, err := doRun(ctx, cfg)
			if err != nil {
				failed = true
				res.Error = err.Error()
				progress("run %s N=%d failed: %v", t, n, err)
			}
			results = append(results, res)
			if err := sleepCtx(ctx, 2*time.Second); err != nil { // let sockets settle
				break
			}
		}
	}
	if ctx.Err() != nil {
		progress("interrupted; reporting what was measured")
		failed = true
	}

	if curve {
		return finishCurve(root, env, o, results, failed)
	}
	writeReport(os.Stdout, env, o, results)
	if o.jsonPath != "" {
		if err := writeJSON(o.jsonPath, struct {
			Env     Env      `json:"env"`
			Results []Result `json:"results"`
		}{env, results}); err != nil {
			return err
		}
	}
	if o.svgPath != "" {
		var single []string // the chart compares single nodes
		for _, t := range o.targets {
			if t != "cluster" && t != "visitors" {
				single = append(single, t)
			}
		}
		if err := writeOutput(root, o.svgPath, []byte(renderSVG(env, single, results))); err != nil {
			return err
		}
	}
	if failed {
		return errors.New("one or more runs failed or were interrupted (see above)")
	}
	return nil
}

// targetPackage names the binary a target runs and the package it is
// built from: floor and sketch are the baselines in bench/, every other
// target runs presence.
func targetPackage(t string) (name, pkg string) {
	switch t {
	case "floor", "sketch":
		return t, "./bench/" + t
	}
	return "presence", "."
}

// loneSetup is what a target that runs alone needs: presence built in a
// scratch directory (the caller removes tmp), its arguments and the
// environment of the measurement.
type loneSetup struct {
	root, tmp, bin string
	args           []string
	env            Env
}

// setupLone builds presence for a target that runs alone.
func setupLone(ctx context.Context, o options, name string) (loneSetup, error) {
	var s loneSetup
	root, err := moduleRoot(ctx)
	if err != nil {
		return s, err
	}
	tmp, err := os.MkdirTemp("", "presence-"+name+"-")
	if err != nil {
		return s, err
	}
	progress("building presence (.)")
	bin := filepath.Join(tmp, "presence")
	if err := build(ctx, root, bin, "."); err != nil {
		os.RemoveAll(tmp)
		return s, err
	}
	s = loneSetup{root: root, tmp: tmp, bin: bin, args: append([]string{"--log-level", "error"}, o.presenceArgs...), env: collectEnv(o)}
	s.env.Presence = s.args
	s.env.Source = sourceID(ctx, root)
	return s, nil
}

// runSoakTarget builds presence and runs the soak against it.
func runSoakTarget(ctx context.Context, o options) error {
	s, err := setupLone(ctx, o, "soak")
	if err != nil {
		return err
	}
	defer os.RemoveAll(s.tmp)
	return runSoak(ctx, o.soak, s.bin, s.args, s.root, s.tmp, s.env)
}

// writeJSON writes v, indented, to path.
func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return err
	}
	progress("wrote %s", path)
	return nil
}

// writeOutput writes data to p, relative to root unless absolute, making
// its folder if need be.
func writeOutput(root, p string, data []byte) error {
	if !filepath.IsAbs(p) {
		p = filepath.Join(root, p)
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		return err
	}
	progress("wrote %s", p)
	return nil
}

// Env describes the machine and toolchain of a measurement.
type Env struct {
	Date      string   `json:"date"`
	Kernel    string   `json:"kernel"`
	NProc     int      `json:"nproc"`
	GoVersion string   `json:"go_version"`
	Rate      float64  `json:"rate"`
	Probes    int      `json:"probes"`
	Sources   int      `json:"sources"`
	Presence  []string `json:"presence_args,omitempty"`    // extra args actually passed
	NodeEnv   []string `json:"cluster_node_env,omitempty"` // extra environment of cluster nodes
	Source    string   `json:"presence_source"`            // git HEAD and a hash of the built sources
}

func collectEnv(o options) Env {
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	return Env{
		Date:      time.Now().UTC().Format(time.RFC3339),
		Kernel:    strings.TrimSpace(string(kernel)),
		NProc:     runtime.NumCPU(),
		GoVersion: runtime.Version(),
		Rate:      o.rate,
		Probes:    o.probes,
		Sources:   o.sources,
	}
}
