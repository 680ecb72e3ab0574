package main

import (
	"context"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/presence/presence/bench/proc"
)

// WatchResult is what one run of the watch target measured.
type WatchResult struct {
	Mode     string `json:"mode"`              // watch: a /watch stream per watcher; streams: a room stream per watcher and room
	Watchers int    `json:"watchers"`          // watchers opened
	Follow   int    `json:"rooms_per_watcher"` //
	Followed int    `json:"followed"`          // watchers × rooms per watcher
	Streams  int    `json:"watcher_streams"`   // the watchers' streams
	Present  int    `json:"present_streams"`   // streams present in the rooms (churned)
	Error    string `json:"error,omitempty"`
	LoadAvg  string `json:"loadavg_start"`

	Failed       int            `json:"failed"`
	FailedByKind map[string]int `json:"failed_by_kind"`

	OpenS             float64 `json:"open_s"` // first watcher dial -> every watched count right
	RSSBeforeKiB      int64   `json:"rss_before_kib"`
	RSSAfterKiB       int64   `json:"rss_after_kib"`
	RSSPerFollowedKiB float64 `json:"rss_per_followed_room_kib"` // (after - before) / followed
	RSSPerStreamKiB   float64 `json:"rss_per_watcher_stream_kib"`
	OpenCPUS          float64 `json:"open_cpu_s"` // server CPU while the watchers opened

	// Churn: the same churn before the watchers open (base) and after.
	ChurnOpsBase   int     `json:"churn_ops_base"`
	ChurnCPUBaseS  float64 `json:"churn_cpu_base_s"`
	ChurnOpsBase2  int     `json:"churn_ops_base_after"` // the base again, once the watchers left
	ChurnCPUBase2S float64 `json:"churn_cpu_base_after_s"`
	ChurnOps       int     `json:"churn_ops"`
	ChurnCPUS      float64 `json:"churn_cpu_s"`
	Delivered      int64   `json:"delivered_updates"`       // room updates the watchers' streams received during the churn
	CPUPerUpdateUs float64 `json:"cpu_per_update_us"`       // (churn CPU - the base's CPU scaled to the same ops) / delivered
	GrossPerUpdate float64 `json:"gross_cpu_per_update_us"` // churn CPU / delivered, the churn itself included
	BaseDriftUs    float64 `json:"base_drift_us"`           // (base after - base before), in µs per delivered update

	// Fan-out, watch mode: a probe joins and leaves a random room; latency to
	// each of its RefStreams watchers. Reference: the same in room "ref",
	// which holds RefStreams streams of its own.
	RefStreams    int     `json:"watchers_per_room"`
	FanoutSamples int     `json:"fanout_samples"`
	FanoutP50Ms   float64 `json:"fanout_p50_ms"`
	FanoutP99Ms   float64 `json:"fanout_p99_ms"`
	RefSamples    int     `json:"ref_samples"`
	RefP50Ms      float64 `json:"ref_p50_ms"`
	RefP99Ms      float64 `json:"ref_p99_ms"`
	ProbeTimeouts int     `json:"probe_timeouts"`
	FanoutCPUS    float64 `json:"fanout_server_cpu_s"`
	FanoutToolS   float64 `json:"fanout_client_cpu_s"`
}

// doWatchRun measures one mode at one size against a fresh server: present
// streams and churn without watchers (the base), then the watchers open,
// then the same churn, then (watch mode) fan-out probes.
func doWatchRun(ctx context.Context, cfg watchConfig, mode string, watchers int, bin string, args []string, logPath string) (res WatchResult, err error) {
	res = WatchResult{Mode: mode, Watchers: watchers, Follow: cfg.Follow, Followed: watchers * cfg.Follow,
		Present: cfg.Present, LoadAvg: loadAvg()}
	ref := 0
	if mode == modeWatch {
		res.Streams = watchers
		ref = watchers * cfg.Follow / cfg.Rooms
	} else {
		res.Streams = watchers * cfg.Follow
	}
	res.RefStreams = ref
	churnOps := int(cfg.Churn*cfg.ChurnTime.Seconds()) + 1
	slots := cfg.Present + ref + res.Streams + 3*churnOps

	srv, err := startServer(ctx, bin, args, logPath)
	if err != nil {
		return res, err
	}
	l, err := newWatchLoad(srv, slots, cfg.Sources)
	if err != nil {
		srv.stop()
		return res, err
	}
	defer func() {
		l.teardown()
		res.Failed, res.FailedByKind = l.failed()
		if err != nil {
			err = fmt.Errorf("%w\n--- server log tail ---\n%s", err, srv.logTail(2000))
		}
	}()
	wr := newWatchRun(cfg, mode, l, slots)

	// 1. Present streams, spread evenly, and the reference room.
	progress("  %d present streams in %d rooms, %d in the reference room", cfg.Present, cfg.Rooms, ref)
	if err := wr.ramp(ctx, cfg.Present+ref, func(i int) {
		if i < cfg.Present {
			wr.present = append(wr.present, wr.start(wr.roomPath(i%cfg.Rooms), int32(i%cfg.Rooms), nil))
			return
		}
		wr.start(wr.roomPath(cfg.Rooms), int32(cfg.Rooms), nil)
	}); err != nil {
		return res, err
	}
	if err := wr.settle(ctx, "the present streams opened"); err != nil {
		return res, err
	}

	// 2. The base: the churn with no watcher.
	if res.ChurnOpsBase, res.ChurnCPUBaseS, err = wr.measureChurn(ctx, "base"); err != nil {
		return res, err
	}

	// 3. The watchers.
	sets := followSets(watchers, cfg.Rooms, cfg.Follow, 11)
	cpu0, rss0, err := l.usage()
	if err != nil {
		return res, err
	}
	progress("  %d watchers of %d rooms each: %d streams (%s)", watchers, cfg.Follow, res.Streams, mode)
	t0 := time.Now()
	if mode == modeWatch {
		err = wr.ramp(ctx, watchers, func(i int) {
			w := newWatcher(sets[i])
			id := wr.start(watchPath(sets[i], cfg.Rooms), -1, w.hook(l.now, &wr.delivered, cfg.Rooms))
			wr.watchers[id] = w
			wr.watcherSlots = append(wr.watcherSlots, id)
			for _, r := range w.rooms {
				wr.followers[r] = append(wr.followers[r], id)
			}
		})
	} else {
		count := func(event, _ []byte) (bool, error) {
			if string(event) == "user count" {
				wr.delivered.Add(1)
			}
			return false, nil
		}
		err = wr.ramp(ctx, res.Streams, func(i int) {
			r := sets[i/cfg.Follow][i%cfg.Follow]
			wr.watcherSlots = append(wr.watcherSlots, wr.start(wr.roomPath(int(r)), r, count))
		})
	}
	if err != nil {
		return res, err
	}
	if err := wr.settle(ctx, "the watchers opened"); err != nil {
		return res, err
	}
	res.OpenS = time.Since(t0).Seconds()
	if f, _ := l.failed(); f*10 > res.Streams {
		return res, fmt.Errorf("%d of %d watcher streams failed to open", f, res.Streams)
	}
	cpu1, rss1, err := l.usage()
	if err != nil {
		return res, err
	}
	res.RSSBeforeKiB, res.RSSAfterKiB, res.OpenCPUS = rss0, rss1, cpu1-cpu0
	res.RSSPerFollowedKiB = float64(rss1-rss0) / float64(res.Followed)
	res.RSSPerStreamKiB = float64(rss1-rss0) / float64(res.Streams)
	progress("  open in %.2f s: RSS %d -> %d KiB, %.3f KiB per followed room, %.2f KiB per watcher stream",
		res.OpenS, rss0, rss1, res.RSSPerFollowedKiB, res.RSSPerStreamKiB)

	// 4. The same churn, delivered to the watchers.
	d0 := wr.delivered.Load()
	if res.ChurnOps, res.ChurnCPUS, err = wr.measureChurn(ctx, "with watchers"); err != nil {
		return res, err
	}
	res.Delivered = wr.delivered.Load() - d0

	// 5. Fan-out of a change to its watchers, against a room's own.
	if mode == modeWatch && cfg.Probes > 0 {
		if err := wr.fanout(ctx, &res); err != nil {
			return res, err
		}
	}

	// 6. The watchers leave, and the base churn again: how far the base
	// moved over the run.
	for _, id := range wr.watcherSlots {
		if c := &l.clients[id]; c.closeByUs() {
			l.left(c)
			if r := wr.roomOf[id]; r >= 0 {
				wr.people[r].Add(-1)
			}
		}
	}
	if err := wr.settle(ctx, "the watchers left"); err != nil {
		return res, err
	}
	if res.ChurnOpsBase2, res.ChurnCPUBase2S, err = wr.measureChurn(ctx, "base, again"); err != nil {
		return res, err
	}
	res.netCPU()
	progress("  %d room updates delivered: %.2f µs CPU each net of the base churn (%.2f gross; the base after moved %+.2f)",
		res.Delivered, res.CPUPerUpdateUs, res.GrossPerUpdate, res.BaseDriftUs)
	return res, nil
}

// netCPU sets the CPU per delivered update: the churn's CPU less what the
// same replacements cost before any watcher opened. The base taken again
// once the watchers left is not used for it: once 13,500 room streams have
// opened and closed, each replacement costs the process more than before
// (1.7 to 2.1 times in the runs of 2026-12-01; the cause is not known,
// maybe what a Go process keeps of its peak). The difference of the two bases, scaled like the net figure, is
// kept as the base's drift.
func (res *WatchResult) netCPU() {
	ops1, ops2 := float64(res.ChurnOpsBase), float64(res.ChurnOpsBase2)
	if res.Delivered <= 0 || ops1 <= 0 {
		return
	}
	ops, n := float64(res.ChurnOps), float64(res.Delivered)
	res.CPUPerUpdateUs = (res.ChurnCPUS - res.ChurnCPUBaseS/ops1*ops) * 1e6 / n
	if ops2 > 0 {
		res.BaseDriftUs = (res.ChurnCPUBase2S/ops2 - res.ChurnCPUBaseS/ops1) * ops * 1e6 / n
	}
	res.GrossPerUpdate = res.ChurnCPUS * 1e6 / n
}

// measureChurn runs one churn phase and returns its replacements and the
// server CPU from its start until every count is right again.
func (wr *watchRun) measureChurn(ctx context.Context, what string) (int, float64, error) {
	if err := wr.quiet(ctx); err != nil {
		return 0, 0, err
	}
	cpu0, err := wr.l.cpu()
	if err != nil {
		return 0, 0, err
	}
	ops, err := wr.churn(ctx)
	if err != nil {
		return ops, 0, err
	}
	if err := wr.settle(ctx, "churn "+what); err != nil {
		return ops, 0, err
	}
	cpu1, err := wr.l.cpu()
	if err != nil {
		return ops, 0, err
	}
	progress("  churn %s: %d replacements, server CPU %.2f s", what, ops, cpu1-cpu0)
	return ops, cpu1 - cpu0, nil
}

// fanout alternates probes of a random room (its watchers) and of the
// reference room (its own streams), cfg.Probes of each.
func (wr *watchRun) fanout(ctx context.Context, res *WatchResult) error {
	var refTargets []watchTarget
	for i := range wr.next {
		if wr.roomOf[i] == int32(wr.cfg.Rooms) {
			c := &wr.l.clients[i]
			if c.state.Load() == stOpen {
				refTargets = append(refTargets, watchTarget{&c.latest, &c.changedAt})
			}
		}
	}
	self := os.Getpid()
	scpu0, _ := wr.l.cpu()
	ccpu0, _ := proc.CPU(self)
	var watched, own []int64
	for range wr.cfg.Probes {
		r := wr.rng.IntN(wr.cfg.Rooms)
		lat, to, err := wr.probeRoom(ctx, r, wr.watchersOf(r))
		watched, res.ProbeTimeouts = append(watched, lat...), res.ProbeTimeouts+to
		if err != nil {
			return err
		}
		lat, to, err = wr.probeRoom(ctx, wr.cfg.Rooms, refTargets)
		own, res.ProbeTimeouts = append(own, lat...), res.ProbeTimeouts+to
		if err != nil {
			return err
		}
	}
	scpu1, _ := wr.l.cpu()
	ccpu1, _ := proc.CPU(self)
	res.FanoutCPUS, res.FanoutToolS = scpu1-scpu0, ccpu1-ccpu0
	res.FanoutSamples, res.RefSamples = len(watched), len(own)
	if len(watched) > 0 {
		slices.Sort(watched)
		res.FanoutP50Ms, res.FanoutP99Ms = msec(percentile(watched, 0.5)), msec(percentile(watched, 0.99))
	}
	if len(own) > 0 {
		slices.Sort(own)
		res.RefP50Ms, res.RefP99Ms = msec(percentile(own, 0.5)), msec(percentile(own, 0.99))
	}
	progress("  fan-out to %d watchers: p50 %.1f ms, p99 %.1f ms; a room's own %d streams: p50 %.1f ms, p99 %.1f ms; %d timeouts",
		len(refTargets), res.FanoutP50Ms, res.FanoutP99Ms, len(refTargets), res.RefP50Ms, res.RefP99Ms, res.ProbeTimeouts)
	return nil
}

// Quiet: the server is idle enough to start a measured phase once it used
// less than quietCPU of a core over quietSpan; the wait is at most quietMax.
const (
	quietCPU  = 0.1
	quietSpan = time.Second
	quietMax  = 30 * time.Second
)

// quiet waits until the server has finished what came before (closing
// 13,500 streams takes it several seconds, and its GC after), so that a
// churn phase's CPU is the churn's alone.
func (wr *watchRun) quiet(ctx context.Context) error {
	deadline := time.Now().Add(quietMax)
	prev, err := wr.l.cpu()
	if err != nil {
		return err
	}
	for {
		if err := sleepCtx(ctx, quietSpan); err != nil {
			return err
		}
		cur, err := wr.l.cpu()
		if err != nil {
			return err
		}
		if cur-prev < quietCPU*quietSpan.Seconds() {
			return nil
		}
		if time.Now().After(deadline) {
			progress("  warning: the server still used %.2f s of CPU a second after %v", cur-prev, quietMax)
			return nil
		}
		prev = cur
	}
}
