package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"html"
	"io"
	"os"
	"slices"
	"strings"
)

// curveTargets are the servers the curve target compares, in this order.
var curveTargets = []string{"presence", "floor", "sketch"}

// curveDefaults gives the curve target its own defaults for the flags the
// caller did not set: N from 1,000 to 19,000 (the server's default cap, at
// 20,000 open files) and its own output files.
func curveDefaults(nList, jsonPath, svgPath *string) {
	set := map[string]bool{}
	flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if !set["n"] {
		*nList = "1000,3000,5000,7000,9000,11000,13000,15000,17000,19000"
	}
	if !set["json"] {
		*jsonPath = "docs/bench-curve.json"
	}
	if !set["svg"] {
		*svgPath = "docs/bench-curve.svg"
	}
}

// gibKiB is 1 GiB in KiB.
const gibKiB = 1 << 20

// CurvePoint is one ramp of the curve target: what a server's RSS grew by
// for the streams it holds.
type CurvePoint struct {
	Target          string         `json:"target"`
	N               int            `json:"n"`
	Opened          int            `json:"opened"` // streams that got their first count; the per-stream figures divide by these
	Failed          int            `json:"failed"`
	FailedByKind    map[string]int `json:"failed_by_kind,omitempty"`
	RSSBeforeKiB    int64          `json:"rss_before_kib"` // the fresh process, before the ramp
	RSSAfterKiB     int64          `json:"rss_after_kib"`  // once every stream shows the count
	RSSPerStreamKiB float64        `json:"rss_per_stream_kib"`
	StreamsPerGiB   float64        `json:"streams_per_gib"` // 1 GiB / RSS per stream
	RampS           float64        `json:"ramp_s"`
	ConvergeS       float64        `json:"converge_ramp_s"`
	ConvergeOK      bool           `json:"converge_ramp_ok"`
	RampCPUS        float64        `json:"ramp_cpu_s"`
	LoadAvg         string         `json:"loadavg_start"`
	Error           string         `json:"error,omitempty"`
}

// curvePoint takes from a ramp-only run what the curve shows.
func curvePoint(r Result) CurvePoint {
	p := CurvePoint{
		Target: r.Target, N: r.N, Opened: r.Opened, Failed: r.Failed, FailedByKind: r.FailedByKind,
		RSSBeforeKiB: r.RSSBeforeKiB, RSSAfterKiB: r.RSSAfterKiB, RSSPerStreamKiB: r.RSSPerConnKiB,
		RampS: r.RampS, ConvergeS: r.ConvergeRampS, ConvergeOK: r.ConvergeRampOK, RampCPUS: r.RampCPUS,
		LoadAvg: r.LoadAvg, Error: r.Error,
	}
	if p.RSSPerStreamKiB > 0 {
		p.StreamsPerGiB = gibKiB / p.RSSPerStreamKiB
	}
	return p
}

// finishCurve reports the curve target's runs: a table on stdout, the
// points as JSON and the chart, both relative to root unless absolute.
func finishCurve(root string, env Env, o options, results []Result, failed bool) error {
	var pts []CurvePoint
	for _, r := range results {
		pts = append(pts, curvePoint(r))
	}
	writeCurveReport(os.Stdout, env, o.ns, pts)
	if o.jsonPath != "" {
		b, err := json.MarshalIndent(struct {
			Env    Env          `json:"env"`
			Points []CurvePoint `json:"points"`
		}{env, pts}, "", "  ")
		if err != nil {
			return err
		}
		if err := writeOutput(root, o.jsonPath, append(b, '\n')); err != nil {
			return err
		}
	}
	if o.svgPath != "" {
		if err := writeOutput(root, o.svgPath, []byte(renderCurveSVG(env, pts))); err != nil {
			return err
		}
	}
	if failed {
		return errors.New("one or more runs failed or were interrupted (see above)")
	}
	return nil
}

// writeCurveReport prints every ramp, then RSS per stream and streams per
// GiB side by side for each N.
func writeCurveReport(w io.Writer, env Env, ns []int, pts []CurvePoint) {
	fmt.Fprintf(w, "## RSS per stream against N\n\n")
	fmt.Fprintf(w, "- date: %s\n- kernel (uname -r): %s\n- nproc: %d\n- Go: %s\n", env.Date, env.Kernel, env.NProc, env.GoVersion)
	fmt.Fprintf(w, "- presence source: %s\n", env.Source)
	fmt.Fprintf(w, "- a fresh process per point; ramp %.0f connects/s over %d source addresses, HTTP/1.1; RSS read once every stream shows the count\n", env.Rate, env.Sources)
	if len(env.Presence) > 0 {
		fmt.Fprintf(w, "- presence extra args: %s\n", strings.Join(env.Presence, " "))
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| target | N | opened | failed | RSS before KiB | RSS after KiB | KiB / stream | streams / GiB | ramp s | converge s | ramp CPU s |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	byKey := map[string]CurvePoint{}
	sorted := slices.Clone(pts)
	slices.SortStableFunc(sorted, func(a, b CurvePoint) int {
		if c := slices.Index(curveTargets, a.Target) - slices.Index(curveTargets, b.Target); c != 0 {
			return c
		}
		return a.N - b.N
	})
	for _, p := range sorted {
		conv := "timeout"
		if p.ConvergeOK {
			conv = fmt.Sprintf("%.3f", p.ConvergeS)
		}
		tail := ""
		if p.Error != "" {
			first, _, _ := strings.Cut(p.Error, "\n")
			tail = " (error: " + first + ")"
		} else {
			byKey[fmt.Sprintf("%s/%d", p.Target, p.N)] = p
		}
		fmt.Fprintf(w, "| %s | %d | %d | %d | %d | %d | %.2f | %.0f | %.2f | %s | %.2f%s |\n",
			p.Target, p.N, p.Opened, p.Failed, p.RSSBeforeKiB, p.RSSAfterKiB, p.RSSPerStreamKiB, p.StreamsPerGiB,
			p.RampS, conv, p.RampCPUS, tail)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| N | "+strings.Join(curveTargets, " KiB/stream | ")+" KiB/stream | "+strings.Join(curveTargets, " streams/GiB | ")+" streams/GiB |")
	fmt.Fprintln(w, "|---:"+strings.Repeat("|---:", 2*len(curveTargets))+"|")
	for _, n := range ns {
		kib, gib := []string{}, []string{}
		for _, t := range curveTargets {
			p, ok := byKey[fmt.Sprintf("%s/%d", t, n)]
			if !ok {
				kib, gib = append(kib, "–"), append(gib, "–")
				continue
			}
			kib, gib = append(kib, fmt.Sprintf("%.2f", p.RSSPerStreamKiB)), append(gib, fmt.Sprintf("%.0f", p.StreamsPerGiB))
		}
		fmt.Fprintf(w, "| %d | %s | %s |\n", n, strings.Join(kib, " | "), strings.Join(gib, " | "))
	}
	var notes []string
	for _, p := range pts {
		if len(p.FailedByKind) > 0 {
			notes = append(notes, fmt.Sprintf("- %s N=%d: failed connections by kind: %v", p.Target, p.N, p.FailedByKind))
		}
		notes = append(notes, fmt.Sprintf("- %s N=%d: load average at start: %s", p.Target, p.N, p.LoadAvg))
	}
	fmt.Fprintf(w, "\nNotes:\n\n%s\n", strings.Join(notes, "\n"))
}

// renderCurveSVG draws RSS per stream against N, a line per server.
func renderCurveSVG(env Env, pts []CurvePoint) string {
	series := map[string][]point{}
	for _, p := range pts {
		if p.Error == "" && p.Opened > 0 {
			series[p.Target] = append(series[p.Target], point{float64(p.N), p.RSSPerStreamKiB})
		}
	}
	for _, s := range series {
		slices.SortFunc(s, func(a, b point) int { return int(a.x - b.x) })
	}
	const w, h = 720.0, 440.0
	var b strings.Builder
	svgOpen(&b, w, h)
	panel(&b, 0, 0, w, h-24, "RSS per stream (HTTP/1.1, fresh process per point)", "streams (N)", "KiB RSS / stream", curveTargets, series)
	fmt.Fprintf(&b, `<text x="8" y="%.0f" font-size="11" fill="#555">%s</text>`+"\n", h-8,
		html.EscapeString(fmt.Sprintf("go run ./bench --targets curve — %s, Linux %s, %d CPUs, %s, ramp %.0f/s", env.Date, env.Kernel, env.NProc, env.GoVersion, env.Rate)))
	b.WriteString("</svg>\n")
	return b.String()
}
