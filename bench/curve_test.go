package main

import (
	"strings"
	"testing"
)

// TestCurveReportAndChart: streams per GiB is 1 GiB over the RSS per
// stream, the chart has a line per server with the points that did not
// fail, and the table says which failed.
func TestCurveReportAndChart(t *testing.T) {
	var results []Result
	for _, tg := range curveTargets {
		for _, n := range []int{1000, 3000} {
			results = append(results, Result{Target: tg, N: n, Opened: n, RSSPerConnKiB: 4, ConvergeRampOK: true})
		}
	}
	results[1].Error = "server process exited during the run\nlog tail"
	pts := make([]CurvePoint, len(results))
	for i, r := range results {
		pts[i] = curvePoint(r)
	}
	if got := pts[0].StreamsPerGiB; got != 262144 {
		t.Fatalf("streams per GiB at 4 KiB each: %v, want 262144", got)
	}
	svg := renderCurveSVG(Env{}, pts)
	if got := strings.Count(svg, "<polyline"); got != len(curveTargets) {
		t.Fatalf("%d lines, want %d", got, len(curveTargets))
	}
	if got := strings.Count(svg, "<title>"); got != len(pts)-1 {
		t.Fatalf("%d points drawn, want %d (the failed one left out)", got, len(pts)-1)
	}
	var b strings.Builder
	writeCurveReport(&b, Env{}, []int{1000, 3000}, pts)
	out := b.String()
	if !strings.Contains(out, "(error: server process exited during the run)") {
		t.Fatalf("the failed point is not marked:\n%s", out)
	}
	if !strings.Contains(out, "| 3000 | – | 4.00 | 4.00 | – | 262144 | 262144 |") {
		t.Fatalf("no side-by-side row for N=3000 without the failed point:\n%s", out)
	}
}
