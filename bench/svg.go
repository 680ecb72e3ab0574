package main

import (
	"fmt"
	"html"
	"math"
	"slices"
	"strings"
)

var seriesColor = map[string]string{"presence": "#1f77b4", "floor": "#d62728", "sketch": "#ff7f0e", "watch": "#2ca02c", "streams": "#9467bd"}

type point struct{ x, y float64 }

// niceStep returns a 1, 2 or 5 times a power of ten step giving about n ticks
// over [0, hi].
func niceStep(hi float64, n int) float64 {
	if hi <= 0 {
		return 1
	}
	raw := hi / float64(n)
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if raw <= m*p {
			return m * p
		}
	}
	return 10 * p
}

func fmtTick(v float64) string {
	if v == math.Trunc(v) {
		return fmt.Sprintf("%.0f", v)
	}
	return strings.TrimRight(strings.TrimRight(fmt.Sprintf("%.3f", v), "0"), ".")
}

// panel draws one line chart with its top-left corner at (ox, oy).
func panel(b *strings.Builder, ox, oy, w, h float64, title, xlabel, ylabel string, targets []string, series map[string][]point) {
	const ml, mr, mt, mb = 64.0, 30.0, 36.0, 48.0
	pw, ph := w-ml-mr, h-mt-mb
	var xmax, ymax float64
	for _, pts := range series {
		for _, p := range pts {
			xmax, ymax = max(xmax, p.x), max(ymax, p.y)
		}
	}
	xstep, ystep := niceStep(xmax, 5), niceStep(ymax, 5)
	xtop, ytop := math.Ceil(xmax/xstep)*xstep, math.Ceil(ymax*1.05/ystep)*ystep
	if xtop == 0 {
		xtop = 1
	}
	if ytop == 0 {
		ytop = 1
	}
	X := func(x float64) float64 { return ox + ml + x/xtop*pw }
	Y := func(y float64) float64 { return oy + mt + ph - y/ytop*ph }

	fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="middle" font-size="15" font-weight="bold">%s</text>`+"\n", ox+ml+pw/2, oy+20, html.EscapeString(title))
	// Grid and ticks.
	for v := 0.0; v <= ytop+ystep/2; v += ystep {
		fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#e5e5e5"/>`+"\n", X(0), Y(v), X(xtop), Y(v))
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="end" font-size="12">%s</text>`+"\n", X(0)-6, Y(v)+4, fmtTick(v))
	}
	for v := 0.0; v <= xtop+xstep/2; v += xstep {
		fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#000"/>`+"\n", X(v), Y(0), X(v), Y(0)+5)
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="middle" font-size="12">%s</text>`+"\n", X(v), Y(0)+19, fmtTick(v))
	}
	// Axes and labels.
	fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#000"/>`+"\n", X(0), Y(0), X(xtop), Y(0))
	fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#000"/>`+"\n", X(0), Y(0), X(0), Y(ytop))
	fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="middle" font-size="13">%s</text>`+"\n", ox+ml+pw/2, oy+h-8, html.EscapeString(xlabel))
	fmt.Fprintf(b, `<text transform="translate(%.1f %.1f) rotate(-90)" text-anchor="middle" font-size="13">%s</text>`+"\n", ox+16, oy+mt+ph/2, html.EscapeString(ylabel))
	// Series.
	for _, t := range targets {
		pts := series[t]
		if len(pts) == 0 {
			continue
		}
		col := seriesColor[t]
		if col == "" {
			col = "#555"
		}
		var path []string
		for _, p := range pts {
			path = append(path, fmt.Sprintf("%.1f,%.1f", X(p.x), Y(p.y)))
		}
		fmt.Fprintf(b, `<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>`+"\n", col, strings.Join(path, " "))
		for _, p := range pts {
			fmt.Fprintf(b, `<circle cx="%.1f" cy="%.1f" r="4" fill="%s"><title>%s N=%.0f: %.3g</title></circle>`+"\n", X(p.x), Y(p.y), col, t, p.x, p.y)
		}
	}
	// Legend.
	for i, t := range targets {
		col := seriesColor[t]
		if col == "" {
			col = "#555"
		}
		lx, ly := X(0)+12, Y(ytop)+14+float64(i)*18
		fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="2"/><circle cx="%.1f" cy="%.1f" r="4" fill="%s"/>`+"\n", lx, ly, lx+24, ly, col, lx+12, ly, col)
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" font-size="12">%s</text>`+"\n", lx+30, ly+4, html.EscapeString(t))
	}
}

// renderSVG draws fan-out p99 latency and ramp CPU per client against N.
func renderSVG(env Env, targets []string, results []Result) string {
	lat, cpu := map[string][]point{}, map[string][]point{}
	for _, r := range results {
		if r.Error != "" {
			continue
		}
		if r.FanoutSamples > 0 {
			lat[r.Target] = append(lat[r.Target], point{float64(r.N), r.FanoutP99Ms})
		}
		cpu[r.Target] = append(cpu[r.Target], point{float64(r.N), r.CPUMsPerClient})
	}
	for _, m := range []map[string][]point{lat, cpu} {
		for _, pts := range m {
			slices.SortFunc(pts, func(a, b point) int { return int(a.x - b.x) })
		}
	}
	const w, h, pw = 960.0, 400.0, 480.0
	var b strings.Builder
	svgOpen(&b, w, h)
	panel(&b, 0, 0, pw, h-24, "Fan-out latency, p99", "clients (N)", "ms", targets, lat)
	panel(&b, pw, 0, pw, h-24, "Server CPU per client during the ramp", "clients (N)", "ms CPU / client", targets, cpu)
	fmt.Fprintf(&b, `<text x="8" y="%.0f" font-size="11" fill="#555">%s</text>`+"\n", h-8,
		html.EscapeString(fmt.Sprintf("go run ./bench — %s, Linux %s, %d CPUs, %s, ramp %.0f/s, %d probes", env.Date, env.Kernel, env.NProc, env.GoVersion, env.Rate, env.Probes)))
	b.WriteString("</svg>\n")
	return b.String()
}

// svgOpen starts a w × h chart on a white ground.
func svgOpen(b *strings.Builder, w, h float64) {
	fmt.Fprintf(b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" font-family="sans-serif">`+"\n", w, h, w, h)
	fmt.Fprintf(b, `<rect width="100%%" height="100%%" fill="#fff"/>`+"\n")
}
