package main

import (
	"encoding/json"
	"fmt"
	"html"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// writeJSONFile writes v as indented JSON to path.
func writeJSONFile(path string, v any, shown string) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return err
	}
	progress("wrote %s", shown)
	return nil
}

// writeSoakSummary prints the soak's verdict as Markdown.
func writeSoakSummary(w io.Writer, r *soakResult) {
	c := r.Config
	fmt.Fprintf(w, "## presence soak\n\n")
	fmt.Fprintf(w, "- date: %s; kernel %s; nproc %d; %s\n", r.Env.Date, r.Env.Kernel, r.Env.NProc, r.Env.GoVersion)
	fmt.Fprintf(w, "- presence source: %s\n", r.Env.Source)
	fmt.Fprintf(w, "- presence args: %s\n", strings.Join(r.ServerArgs, " "))
	fmt.Fprintf(w, "- load: %d HTTP/1.1 + %d HTTP/2 (%d connections x %d) long-lived readers over TLS in %d rooms; churn %.0f joins/s (life %v-%v, %.0f%% visitors, %.0f%% over HTTP/2); %d never-reading clients; a quiet checkpoint every %v (held %v)\n",
		c.H1, c.H2Conns*c.H2Streams, c.H2Conns, c.H2Streams, c.Rooms, c.Churn, churnLifeMin, churnLifeMax, 100*c.Visitors, 100*c.ChurnH2, c.Stalled, c.Checkpoint, c.Quiet)
	fmt.Fprintf(w, "- ran %.0f s of churn and checkpoints (%v asked); load average at start and end: %s\n", r.DurationS, c.Duration, strings.Join(r.LoadAvg, " / "))
	ch := r.Churn
	fmt.Fprintf(w, "- churn: %d joins (%.1f/s), %d leaves (%.1f/s), %d reused visitor ids, %d over HTTP/2, %d skipped\n",
		ch.Joins, ch.JoinsPerS, ch.Leaves, ch.LeavesPerS, ch.ReusedVisitors, ch.OverH2, ch.Skipped)
	fmt.Fprintf(w, "- longest silence of an open long-lived stream: %.1f s\n", r.MaxSilenceS)
	if len(r.Samples) > 0 {
		var maxRSS int64
		var maxG, maxStreams int
		var cpu, tool float64
		n := 0
		for _, s := range r.Samples {
			maxRSS, maxG, maxStreams = max(maxRSS, s.RSSKiB), max(maxG, s.Goroutines), max(maxStreams, s.Streams)
			if s.Phase == "churn" {
				cpu, tool, n = cpu+s.ServerCPU, tool+s.ToolCPU, n+1
			}
		}
		if n > 0 {
			cpu, tool = cpu/float64(n), tool/float64(n)
		}
		fmt.Fprintf(w, "- peak: %d streams, RSS %d KiB, %d goroutines; mean CPU during churn: server %.0f%%, load tool %.0f%% (of one core)\n", maxStreams, maxRSS, maxG, cpu, tool)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| checkpoint | at s | settled s | quiet s | exact | readers | rooms: expected people (wrong readers, /api/rooms count) |")
	fmt.Fprintln(w, "|---:|---:|---:|---:|---|---:|---|")
	for _, cp := range r.Checkpoints {
		var rooms []string
		for _, rm := range cp.Rooms {
			s := fmt.Sprintf("%s %d", rm.Room, rm.People)
			if rm.WrongReaders > 0 || rm.APICount != rm.People || rm.APIConnections != rm.Streams {
				s += fmt.Sprintf(" (%d wrong %v, api %d/%d streams %d)", rm.WrongReaders, rm.WrongValues, rm.APICount, rm.APIConnections, rm.Streams)
			}
			rooms = append(rooms, s)
		}
		settled := fmt.Sprintf("%.1f", cp.SettleS)
		if !cp.Settled {
			settled = "timeout"
		}
		fmt.Fprintf(w, "| %d | %.0f | %s | %.1f | %v | %d | %s |\n", cp.Index, cp.AtS, settled, cp.QuietS, cp.Exact, cp.Readers, strings.Join(rooms, "; "))
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| check | result | detail |")
	fmt.Fprintln(w, "|---|---|---|")
	for _, ck := range r.Checks {
		res := "pass"
		if !ck.OK {
			res = "**FAIL**"
		}
		fmt.Fprintf(w, "| %s | %s | %s |\n", ck.Name, res, strings.ReplaceAll(ck.Detail, "|", "\\|"))
	}
	fmt.Fprintln(w)
	if len(r.FirstEvents) > 0 {
		fmt.Fprintln(w, "First unexpected ends:")
		fmt.Fprintln(w)
		for i, e := range r.FirstEvents {
			if i == 10 {
				fmt.Fprintf(w, "- ... (%d in the JSON)\n", len(r.FirstEvents))
				break
			}
			fmt.Fprintf(w, "- t=%.1f s %s %s in %s: %s: %s\n", e.AtS, e.Client, e.What, e.Room, e.Kind, e.Error)
		}
		fmt.Fprintln(w)
	}
	var keys []string
	for k := range r.Extra {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		for _, n := range r.Extra[k] {
			fmt.Fprintf(w, "Note (%s): %s\n", k, n)
		}
	}
	if r.Error != "" {
		fmt.Fprintf(w, "Stopped early: %s\n", firstLine(r.Error))
	}
	verdict := "PASS"
	if !r.Pass {
		verdict = "FAIL"
	}
	fmt.Fprintf(w, "\n**soak: %s**\n", verdict)
}

// tsSeries is one line of a time-series panel.
type tsSeries struct {
	name  string
	color string
	pts   []point
	step  bool // drawn as steps (counters)
}

// tsPanel draws a time-series chart with its top-left corner at (ox, oy):
// x in seconds, the quiet checkpoints shaded, and optional horizontal
// reference lines (name -> y).
func tsPanel(b *strings.Builder, ox, oy, w, h float64, title, ylabel string, series []tsSeries, xmax float64, quiet [][2]float64, refs map[string]float64) {
	const ml, mr, mt, mb = 64.0, 16.0, 36.0, 40.0
	pw, ph := w-ml-mr, h-mt-mb
	var ymax float64
	for _, s := range series {
		for _, p := range s.pts {
			ymax = max(ymax, p.y)
		}
	}
	for _, v := range refs {
		ymax = max(ymax, v)
	}
	// Headroom above the data for the legend, one line per series.
	head := 1.05 + 0.09*float64(len(series))
	xstep, ystep := niceStep(xmax, 6), niceStep(ymax*head, 4)
	xtop, ytop := math.Max(math.Ceil(xmax/xstep)*xstep, 1), math.Ceil(ymax*head/ystep)*ystep
	if ytop == 0 {
		ytop = 1
	}
	X := func(x float64) float64 { return ox + ml + x/xtop*pw }
	Y := func(y float64) float64 { return oy + mt + ph - y/ytop*ph }
	fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="middle" font-size="14" font-weight="bold">%s</text>`+"\n", ox+ml+pw/2, oy+20, html.EscapeString(title))
	for _, q := range quiet {
		fmt.Fprintf(b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="#f0f0f0"/>`+"\n", X(q[0]), Y(ytop), max(1, X(q[1])-X(q[0])), ph)
	}
	for v := 0.0; v <= ytop+ystep/2; v += ystep {
		fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#e0e0e0"/>`+"\n", X(0), Y(v), X(xtop), Y(v))
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="end" font-size="11">%s</text>`+"\n", X(0)-6, Y(v)+4, fmtTick(v))
	}
	for v := 0.0; v <= xtop+xstep/2; v += xstep {
		fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#000"/>`+"\n", X(v), Y(0), X(v), Y(0)+5)
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="middle" font-size="11">%s</text>`+"\n", X(v), Y(0)+18, fmtTick(v))
	}
	fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#000"/>`+"\n", X(0), Y(0), X(xtop), Y(0))
	fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#000"/>`+"\n", X(0), Y(0), X(0), Y(ytop))
	fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="middle" font-size="12">time, s</text>`+"\n", ox+ml+pw/2, oy+h-6)
	fmt.Fprintf(b, `<text transform="translate(%.1f %.1f) rotate(-90)" text-anchor="middle" font-size="12">%s</text>`+"\n", ox+16, oy+mt+ph/2, html.EscapeString(ylabel))
	var names []string
	for n := range refs {
		names = append(names, n)
	}
	sort.Strings(names)
	for i, n := range names {
		y, dy := refs[n], -3.0
		if i%2 == 1 { // close lines: every other label below its line
			dy = 11
		}
		fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#888" stroke-dasharray="4 3"/>`+"\n", X(0), Y(y), X(xtop), Y(y))
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="end" font-size="10" fill="#555">%s</text>`+"\n", X(xtop)-2, Y(y)+dy, html.EscapeString(n))
	}
	for _, s := range series {
		var path []string
		for j, p := range s.pts {
			if s.step && j > 0 {
				path = append(path, fmt.Sprintf("%.1f,%.1f", X(p.x), Y(s.pts[j-1].y)))
			}
			path = append(path, fmt.Sprintf("%.1f,%.1f", X(p.x), Y(p.y)))
		}
		if len(path) > 0 {
			fmt.Fprintf(b, `<polyline fill="none" stroke="%s" stroke-width="1.8" points="%s"/>`+"\n", s.color, strings.Join(path, " "))
		}
	}
	// The legend last, on a light background, so that no line hides it.
	for i, s := range series {
		lx, ly := X(0)+10, Y(ytop)+12+float64(i)*15
		fmt.Fprintf(b, `<rect x="%.1f" y="%.1f" width="%.1f" height="15" fill="#fff" fill-opacity="0.85"/>`+"\n", lx-2, ly-7.5, 26+6.2*float64(len(s.name)))
		fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="2"/>`+"\n", lx, ly, lx+18, ly, s.color)
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" font-size="11">%s</text>`+"\n", lx+22, ly+4, html.EscapeString(s.name))
	}
}

// renderSoakSVG draws the soak over time: streams, memory, goroutines,
// CPU, and the disconnects and evictions, with the quiet checkpoints
// shaded.
func renderSoakSVG(r *soakResult) string {
	var streams, expected, rss, gor, scpu, tcpu, disc, churnBad, evicted []point
	var xmax float64
	for _, s := range r.Samples {
		x := s.TS
		xmax = max(xmax, x)
		streams = append(streams, point{x, float64(s.Streams)})
		expected = append(expected, point{x, float64(s.Expected)})
		rss = append(rss, point{x, float64(s.RSSKiB) / 1024})
		gor = append(gor, point{x, float64(s.Goroutines)})
		scpu = append(scpu, point{x, s.ServerCPU})
		tcpu = append(tcpu, point{x, s.ToolCPU})
		disc = append(disc, point{x, float64(s.LongDisconnects)})
		churnBad = append(churnBad, point{x, float64(s.ChurnFailures)})
		evicted = append(evicted, point{x, float64(s.Evicted)})
	}
	var quiet [][2]float64
	for _, cp := range r.Checkpoints {
		quiet = append(quiet, [2]float64{cp.AtS, cp.AtS + cp.QuietS})
	}
	const w, h, pw, ph = 1000.0, 780.0, 500.0, 250.0
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" font-family="sans-serif">`+"\n", w, h, w, h)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="#fff"/>`+"\n")
	tsPanel(&b, 0, 0, pw, ph, "Streams open", "streams", []tsSeries{
		{name: "service (presence_streams_open)", color: "#1f77b4", pts: streams},
		{name: "soak's own count", color: "#ff7f0e", pts: expected},
	}, xmax, quiet, nil)
	tsPanel(&b, pw, 0, pw, ph, "Service RSS", "MiB", []tsSeries{{name: "VmRSS", color: "#2ca02c", pts: rss}}, xmax, quiet,
		map[string]float64{"start": float64(r.Baseline.RSSKiB) / 1024, "+10%": growthLimit * float64(r.Baseline.RSSKiB) / 1024})
	tsPanel(&b, 0, ph, pw, ph, "Service goroutines", "goroutines", []tsSeries{{name: "go_goroutines", color: "#9467bd", pts: gor}}, xmax, quiet,
		map[string]float64{"start": float64(r.Baseline.Goroutines), "+10%": growthLimit * float64(r.Baseline.Goroutines)})
	tsPanel(&b, pw, ph, pw, ph, "CPU", "% of one core", []tsSeries{
		{name: "service", color: "#1f77b4", pts: scpu},
		{name: "load tool", color: "#7f7f7f", pts: tcpu},
	}, xmax, quiet, nil)
	tsPanel(&b, 0, 2*ph, pw, ph, "Unexpected ends (cumulative)", "streams", []tsSeries{
		{name: "long-lived readers disconnected", color: "#d62728", pts: disc, step: true},
		{name: "churn readers cut or refused", color: "#ff7f0e", pts: churnBad, step: true},
		{name: "evicted (never-reading: " + fmt.Sprint(r.Config.Stalled) + ")", color: "#000", pts: evicted, step: true},
	}, xmax, quiet, nil)
	// The verdict, as text.
	x0, y0 := pw+20, 2*ph+30
	verdict, col := "PASS", "#2ca02c"
	if !r.Pass {
		verdict, col = "FAIL", "#d62728"
	}
	fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" font-size="16" font-weight="bold" fill="%s">soak: %s</text>`+"\n", x0, y0, col, verdict)
	for i, ck := range r.Checks {
		mark, c := "✓", "#2ca02c"
		if !ck.OK {
			mark, c = "✗", "#d62728"
		}
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" font-size="12"><tspan fill="%s">%s</tspan> %s</text>`+"\n", x0, y0+22+float64(i)*17, c, mark, html.EscapeString(ck.Name))
	}
	fmt.Fprintf(&b, `<text x="8" y="%.0f" font-size="11" fill="#555">%s</text>`+"\n", h-8, html.EscapeString(fmt.Sprintf(
		"go run ./bench --targets soak — %s, Linux %s, %d CPUs, %s; %d+%d readers, churn %.0f/s, %d never-reading; grey: quiet checkpoints",
		r.Env.Date, r.Env.Kernel, r.Env.NProc, r.Env.GoVersion, r.Config.H1, r.Config.H2Conns*r.Config.H2Streams, r.Config.Churn, r.Config.Stalled)))
	b.WriteString("</svg>\n")
	return b.String()
}
