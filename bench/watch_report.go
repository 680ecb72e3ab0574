package main

import (
	"context"
	"errors"
	"fmt"
	"html"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// runWatchTarget builds presence and measures the one-stream-per-room way
// at what one process holds, then the watch way at each --watchers size,
// each against a fresh server, and reports them side by side.
func runWatchTarget(ctx context.Context, o options, nofile uint64) error {
	cfg := o.watch
	if err := cfg.check(nofile); err != nil {
		return err
	}
	s, err := setupLone(ctx, o, "watch")
	if err != nil {
		return err
	}
	defer os.RemoveAll(s.tmp)
	env := s.env

	type run struct {
		mode string
		n    int
	}
	runs := []run{{modeStreams, cfg.streamWatchers()}}
	for _, w := range cfg.Watchers {
		runs = append(runs, run{modeWatch, w})
	}
	var results []WatchResult
	failed := false
	for _, r := range runs {
		if ctx.Err() != nil {
			break
		}
		progress("run: watch target, %s way, %d watchers (load average %s)", r.mode, r.n, loadAvg())
		res, err := doWatchRun(ctx, cfg, r.mode, r.n, s.bin, s.args, filepath.Join(s.tmp, fmt.Sprintf("%s-%d.log", r.mode, r.n)))
		if err != nil {
			failed = true
			res.Error = err.Error()
			progress("run %s %d failed: %v", r.mode, r.n, err)
		}
		results = append(results, res)
		if sleepCtx(ctx, 2*time.Second) != nil {
			break
		}
	}
	if ctx.Err() != nil {
		progress("interrupted; reporting what was measured")
		failed = true
	}
	writeWatchReport(os.Stdout, env, cfg, results)
	if o.jsonPath != "" {
		if err := writeJSON(o.jsonPath, struct {
			Env     Env           `json:"env"`
			Config  watchConfig   `json:"config"`
			Results []WatchResult `json:"results"`
		}{env, cfg, results}); err != nil {
			return err
		}
	}
	if cfg.SVGPath != "" {
		if err := writeOutput(s.root, cfg.SVGPath, []byte(renderWatchSVG(env, cfg, results))); err != nil {
			return err
		}
	}
	if failed {
		return errors.New("one or more runs failed or were interrupted (see above)")
	}
	return nil
}

// writeWatchReport prints the watch target's Markdown table and its checks.
func writeWatchReport(w io.Writer, env Env, cfg watchConfig, results []WatchResult) {
	fmt.Fprintf(w, "## presence watch benchmark\n\n")
	fmt.Fprintf(w, "- date: %s\n- kernel (uname -r): %s\n- nproc: %d\n- Go: %s\n", env.Date, env.Kernel, env.NProc, env.GoVersion)
	fmt.Fprintf(w, "- presence source: %s\n", env.Source)
	fmt.Fprintf(w, "- %d rooms, %d followed per watcher; %d present streams spread over them; churn %.0f replacements/s for %v, once before the watchers open (the base) and once after\n",
		cfg.Rooms, cfg.Follow, cfg.Present, cfg.Churn, cfg.ChurnTime)
	fmt.Fprintf(w, "- ramp %.0f connects/s over %d source addresses; %d fan-out probes of each kind (join and leave)\n\n", cfg.Rate, cfg.Sources, cfg.Probes)
	fmt.Fprintln(w, "| way | watchers | followed rooms | streams | failed | open s | RSS delta MiB | KiB / followed room | KiB / watcher stream | updates delivered | CPU µs / update | fan-out p99 ms, watchers | fan-out p99 ms, a room's own |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, r := range results {
		fan, own := "-", "-"
		if r.FanoutSamples > 0 {
			fan = fmt.Sprintf("%.1f (%d each)", r.FanoutP99Ms, r.RefStreams)
			own = fmt.Sprintf("%.1f (%d)", r.RefP99Ms, r.RefStreams)
		}
		way := "one `/watch` stream per watcher"
		if r.Mode == modeStreams {
			way = "one room stream per watcher and room"
		}
		if r.Error != "" {
			way += " (error)"
		}
		fmt.Fprintf(w, "| %s | %d | %d | %d | %d | %.2f | %.1f | %.3f | %.2f | %d | %.2f | %s | %s |\n",
			way, r.Watchers, r.Followed, r.Streams, r.Failed, r.OpenS, float64(r.RSSAfterKiB-r.RSSBeforeKiB)/1024,
			r.RSSPerFollowedKiB, r.RSSPerStreamKiB, r.Delivered, r.CPUPerUpdateUs, fan, own)
	}
	fmt.Fprintln(w)
	for _, line := range watchChecks(results) {
		fmt.Fprintln(w, line)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Notes:")
	fmt.Fprintln(w)
	for _, r := range results {
		fmt.Fprintf(w, "- %s %d: load average at start: %s; churn CPU %.2f s for %d replacements (base %.2f s for %d before the watchers, %.2f s for %d after, a drift of %+.2f µs per update), %.2f µs gross per update; fan-out CPU server %.2f s, load tool %.2f s\n",
			r.Mode, r.Watchers, r.LoadAvg, r.ChurnCPUS, r.ChurnOps, r.ChurnCPUBaseS, r.ChurnOpsBase, r.ChurnCPUBase2S, r.ChurnOpsBase2, r.BaseDriftUs, r.GrossPerUpdate, r.FanoutCPUS, r.FanoutToolS)
		if r.Error != "" {
			first, _, _ := strings.Cut(r.Error, "\n")
			fmt.Fprintf(w, "- %s %d: error: %s\n", r.Mode, r.Watchers, first)
		}
		if len(r.FailedByKind) > 0 {
			fmt.Fprintf(w, "- %s %d: failed connections by kind: %v\n", r.Mode, r.Watchers, r.FailedByKind)
		}
		if r.ProbeTimeouts > 0 {
			fmt.Fprintf(w, "- %s %d: %d probe steps timed out\n", r.Mode, r.Watchers, r.ProbeTimeouts)
		}
	}
}

// watchChecks holds the good runs against the four targets.
func watchChecks(results []WatchResult) []string {
	var streams *WatchResult
	var watch []WatchResult
	for i, r := range results {
		switch {
		case r.Error != "":
		case r.Mode == modeStreams:
			streams = &results[i]
		default:
			watch = append(watch, r)
		}
	}
	if len(watch) == 0 {
		return []string{"Checks: none (no watch run without errors)"}
	}
	mark := func(ok bool) string {
		if ok {
			return "met"
		}
		return "**not met**"
	}
	out := []string{"Checks:", ""}
	for _, r := range watch {
		line := fmt.Sprintf("- %d watchers: memory per followed room %.3f KiB (target at most 1 KiB: %s)", r.Watchers, r.RSSPerFollowedKiB, mark(r.RSSPerFollowedKiB <= 1))
		if streams != nil {
			line += fmt.Sprintf(", against %.2f KiB per room stream; CPU per delivered update %.2f µs against %.2f µs, ratio %s (target at most 0.5: %s)",
				streams.RSSPerStreamKiB, r.CPUPerUpdateUs, streams.CPUPerUpdateUs, ratio(r.CPUPerUpdateUs, streams.CPUPerUpdateUs),
				mark(streams.CPUPerUpdateUs > 0 && r.CPUPerUpdateUs <= 0.5*streams.CPUPerUpdateUs))
		}
		if r.FanoutSamples > 0 {
			line += fmt.Sprintf("; fan-out p99 %.1f ms against a room's own %.1f ms at %d deliveries (target no worse: %s)",
				r.FanoutP99Ms, r.RefP99Ms, r.RefStreams, mark(r.FanoutP99Ms <= r.RefP99Ms))
		}
		out = append(out, line)
	}
	if len(watch) > 1 {
		a, b := watch[0], watch[len(watch)-1]
		grow := float64(b.Followed) / float64(a.Followed)
		rssA, rssB := float64(a.RSSAfterKiB-a.RSSBeforeKiB), float64(b.RSSAfterKiB-b.RSSBeforeKiB)
		out = append(out, fmt.Sprintf("- linear growth, %d to %d watchers (followed rooms x%.2f): RSS delta x%s, deliveries x%s, net churn CPU x%s; per unit: KiB per followed room x%s, CPU per update x%s (linear: per-unit ratios near 1)",
			a.Watchers, b.Watchers, grow, ratio(rssB, rssA), ratio(float64(b.Delivered), float64(a.Delivered)),
			ratio(b.CPUPerUpdateUs*float64(b.Delivered), a.CPUPerUpdateUs*float64(a.Delivered)),
			ratio(b.RSSPerFollowedKiB, a.RSSPerFollowedKiB), ratio(b.CPUPerUpdateUs, a.CPUPerUpdateUs)))
	}
	return out
}

// renderWatchSVG draws memory per followed room and CPU per delivered
// update against watchers × rooms, one series per way.
func renderWatchSVG(env Env, cfg watchConfig, results []WatchResult) string {
	mem, cpu := map[string][]point{}, map[string][]point{}
	for _, r := range results {
		if r.Error != "" {
			continue
		}
		x := float64(r.Followed)
		mem[r.Mode] = append(mem[r.Mode], point{x, r.RSSPerFollowedKiB})
		cpu[r.Mode] = append(cpu[r.Mode], point{x, r.CPUPerUpdateUs})
	}
	targets := []string{modeWatch, modeStreams}
	const w, h, pw = 960.0, 400.0, 480.0
	var b strings.Builder
	svgOpen(&b, w, h)
	panel(&b, 0, 0, pw, h-24, "Server memory per followed room", "watchers × rooms", "KiB", targets, mem)
	panel(&b, pw, 0, pw, h-24, "Server CPU per delivered room update", "watchers × rooms", "µs", targets, cpu)
	fmt.Fprintf(&b, `<text x="8" y="%.0f" font-size="11" fill="#555">%s</text>`+"\n", h-8,
		html.EscapeString(fmt.Sprintf("go run ./bench --targets watch — %s, %d CPUs, %s; watch: a /watch stream per watcher; streams: a room stream per watcher and room",
			env.Date, env.NProc, env.GoVersion)))
	b.WriteString("</svg>\n")
	return b.String()
}
