package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
)

func writeReport(w io.Writer, env Env, o options, results []Result) {
	fmt.Fprintf(w, "## presence load benchmark\n\n")
	fmt.Fprintf(w, "- date: %s\n- kernel (uname -r): %s\n- nproc: %d\n- Go: %s\n", env.Date, env.Kernel, env.NProc, env.GoVersion)
	fmt.Fprintf(w, "- presence source: %s\n", env.Source)
	fmt.Fprintf(w, "- ramp rate: %.0f connects/s over %d source addresses; fan-out probes: %d joins + %d leaves\n",
		env.Rate, env.Sources, env.Probes, env.Probes)
	if len(env.Presence) > 0 {
		fmt.Fprintf(w, "- presence extra args: %s\n", strings.Join(env.Presence, " "))
	}
	if len(env.NodeEnv) > 0 {
		fmt.Fprintf(w, "- cluster nodes' extra environment: %s\n", strings.Join(env.NodeEnv, " "))
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| target | clients | failed | ramp s | converge after ramp s | converge after half drop s | fan-out p50 ms | fan-out p99 ms | fan-out mean max ms | RSS KiB/conn | ramp CPU s | CPU ms/client |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	sorted := slices.Clone(results)
	slices.SortStableFunc(sorted, func(a, b Result) int {
		if c := strings.Compare(targetOrder(a.Target), targetOrder(b.Target)); c != 0 {
			return c
		}
		return a.N - b.N
	})
	for _, r := range sorted {
		conv := func(ok bool, s float64) string {
			if !ok {
				return "timeout"
			}
			return fmt.Sprintf("%.3f", s)
		}
		row := []string{
			r.Target, fmt.Sprint(r.N), fmt.Sprint(r.Failed),
			fmt.Sprintf("%.2f", r.RampS),
			conv(r.ConvergeRampOK, r.ConvergeRampS),
			conv(r.ConvergeDropOK, r.ConvergeDropS),
			fmt.Sprintf("%.1f", r.FanoutP50Ms),
			fmt.Sprintf("%.1f", r.FanoutP99Ms),
			fmt.Sprintf("%.1f", r.FanoutMeanMaxMs),
			fmt.Sprintf("%.2f", r.RSSPerConnKiB),
			fmt.Sprintf("%.2f", r.RampCPUS),
			fmt.Sprintf("%.3f", r.CPUMsPerClient),
		}
		if r.Error != "" {
			row[len(row)-1] += " (error)"
		}
		fmt.Fprintf(w, "| %s |\n", strings.Join(row, " | "))
	}
	fmt.Fprintln(w)

	byKey := map[string]Result{}
	for _, r := range results {
		if r.Error == "" {
			byKey[fmt.Sprintf("%s/%d", r.Target, r.N)] = r
		}
	}
	var notes []string
	for _, r := range results {
		notes = append(notes, fmt.Sprintf("- %s N=%d: load average at start: %s", r.Target, r.N, r.LoadAvg))
		if r.Error != "" {
			first, _, _ := strings.Cut(r.Error, "\n")
			notes = append(notes, fmt.Sprintf("- %s N=%d: error: %s", r.Target, r.N, first))
		}
		if r.ProbeTimeouts > 0 {
			notes = append(notes, fmt.Sprintf("- %s N=%d: %d fan-out probe steps timed out", r.Target, r.N, r.ProbeTimeouts))
		}
		if len(r.FailedByKind) > 0 {
			notes = append(notes, fmt.Sprintf("- %s N=%d: failed connections by kind: %v", r.Target, r.N, r.FailedByKind))
		}
	}

	for _, r := range sorted {
		if r.Nodes < 2 {
			continue
		}
		fmt.Fprintf(w, "Cluster of %d nodes and one Redis, N=%d (the servers' RSS and CPU above are the nodes' sums):\n\n", r.Nodes, r.N)
		fmt.Fprintf(w, "- Redis calls per second per node during the ramp (churn): %s; redis-server counted %.0f commands/s in all (%.0f per node), the commands inside scripts included\n",
			fmtRates(r.RedisRampPerNode), r.RedisServerRamp, r.RedisServerRamp/float64(r.Nodes))
		fmt.Fprintf(w, "- Redis calls per second per node at rest (%v): %s; redis-server counted %.1f commands/s in all (%.1f per node), the commands inside scripts and our own INFO calls included\n",
			restSpan, fmtRates(r.RedisRestPerNode), r.RedisServerRest, r.RedisServerRest/float64(r.Nodes))
		kill := "timeout"
		if r.KillConvergeOK {
			kill = fmt.Sprintf("%.3f s", r.KillConvergeS)
		}
		fmt.Fprintf(w, "- kill -9 of one node (%d clients): every other client right after %s\n\n", r.KilledClients, kill)
	}

	fmt.Fprintln(w, "Ratios (ramp CPU):")
	fmt.Fprintln(w)
	nRatios := 0
	for _, n := range o.ns {
		p, okP := byKey[fmt.Sprintf("presence/%d", n)]
		f, okF := byKey[fmt.Sprintf("floor/%d", n)]
		if okP && okF {
			fmt.Fprintf(w, "- presence/floor at N=%d: %s\n", n, ratio(p.RampCPUS, f.RampCPUS))
			nRatios++
		}
	}
	for _, n := range o.ns {
		p, okP := byKey[fmt.Sprintf("presence/%d", n)]
		v, okV := byKey[fmt.Sprintf("visitors/%d", n)]
		if okP && okV {
			fmt.Fprintf(w, "- visitors (%d tabs per cookie)/presence at N=%d: ramp CPU %s, RSS per connection %s, fan-out CPU %s\n",
				v.Tabs, n, ratio(v.RampCPUS, p.RampCPUS), ratio(v.RSSPerConnKiB, p.RSSPerConnKiB), ratio(v.FanoutServerCPUS, p.FanoutServerCPUS))
			nRatios++
		}
	}
	lo, hi := slices.Min(o.ns), slices.Max(o.ns)
	if lo != hi {
		for _, t := range o.targets {
			a, okA := byKey[fmt.Sprintf("%s/%d", t, hi)]
			b, okB := byKey[fmt.Sprintf("%s/%d", t, lo)]
			if okA && okB {
				fmt.Fprintf(w, "- %s CPU(%d)/CPU(%d): %s (clients ratio %.2f)\n", t, hi, lo, ratio(a.RampCPUS, b.RampCPUS), float64(hi)/float64(lo))
				nRatios++
			}
		}
	}
	if nRatios == 0 {
		fmt.Fprintln(w, "- none (they need both targets at one N, or two values of N without errors)")
	}
	if len(notes) > 0 {
		fmt.Fprintln(w)
		fmt.Fprintln(w, "Notes:")
		fmt.Fprintln(w)
		for _, n := range notes {
			fmt.Fprintln(w, n)
		}
	}
}

func targetOrder(t string) string {
	switch t {
	case "presence":
		return "0"
	case "visitors":
		return "01"
	case "cluster":
		return "2"
	}
	return "1" + t
}

func ratio(a, b float64) string {
	if b == 0 {
		return "n/a (zero denominator)"
	}
	return fmt.Sprintf("%.2f", a/b)
}
