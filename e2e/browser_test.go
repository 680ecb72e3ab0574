package e2e

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Three people (three profiles) each see 3; one leaving makes the others
// see 2 within a second; three tabs of one profile count as one person.
func TestBrowserPeopleSeeEachOther(t *testing.T) {
	s := browserServer(t)
	b := browser(t)
	url := s.URL + "/?room=browsers"
	var tabs []context.Context
	var closeFirst context.CancelFunc
	for i := range 3 {
		tb, cancel := tab(t, newProfile(t, b), url)
		tabs = append(tabs, tb)
		if i == 0 {
			closeFirst = cancel
		}
	}
	waitTabs(t, 10*time.Second, 3, tabs...)
	if l := demo(t, tabs[1]).Label; !strings.Contains(l, "people here now") {
		t.Errorf("label %q, want \"people here now\"", l)
	}
	screenshot(t, tabs[1], "screenshot-demo.png")

	start := time.Now()
	closeFirst()
	took := waitTabs(t, 5*time.Second, 2, tabs[1:]...)
	if took > time.Second {
		t.Errorf("the others saw 2 after %v, want within a second", took)
	}
	t.Logf("a closed profile's tab left the others' count %v after it closed", time.Since(start).Round(time.Millisecond))

	// Two more tabs of the second person: still 2 people.
	second := tabs[1]
	more := []context.Context{tabs[1], tabs[2]}
	for range 2 {
		tb, _ := tab(t, second, url) // same profile: a child of its tab's context
		more = append(more, tb)
	}
	waitTabs(t, 5*time.Second, 2, more...)
	if l := demo(t, more[2]).Label; !strings.Contains(l, "people here now") {
		t.Errorf("a new tab's label %q, want \"people here now\"", l)
	}
}

// Restarting the server: pages reconnect by themselves and show the right
// count.
func TestBrowserReconnectsAfterRestart(t *testing.T) {
	s := browserServer(t)
	b := browser(t)
	url := s.URL + "/?room=restart"
	t1, _ := tab(t, newProfile(t, b), url)
	t2, _ := tab(t, newProfile(t, b), url)
	waitTabs(t, 10*time.Second, 2, t1, t2)

	if err := s.Stop(t); err != nil {
		t.Fatal(err)
	}
	// The page says so while the server is away.
	deadline := time.Now().Add(5 * time.Second)
	for p := demo(t, t1); p.State != "reconnecting"; p = demo(t, t1) {
		if time.Now().After(deadline) {
			t.Fatalf("with the server gone the page shows %q, want reconnecting", p.State)
		}
		time.Sleep(20 * time.Millisecond)
	}
	browserServer(t, "--addr", s.Addr)
	took := waitTabs(t, 15*time.Second, 2, t1, t2)
	t.Logf("pages live again with the right count %v after the restart", took.Round(time.Millisecond))
}

// hostPage serves a page of another origin that embeds the widget of the
// service at *presenceURL (set once the service runs).
func hostPage(t *testing.T, presenceURL *atomic.Value, room string) *httptest.Server {
	t.Helper()
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><html><head><meta charset="utf-8"><title>Host page</title>
<style>body{font:18px Georgia,serif;margin:40px;color:#222;max-width:40em} p{color:#a00} div,span{font-size:40px;color:#0a0}</style></head>
<body><h1>An article on another site</h1><p>This host page styles every div and span in big green type, and its paragraphs in red: none of it may reach the widget.</p>
<p>Viewing now: <span id="badge"></span></p>
<p id="second">Readers: <span id="badge2"></span></p>
<script src="%s/widget.js" data-room="%s" data-target="#badge" async></script>
<script src="%[1]s/widget.js" data-room="%[2]s" data-target="#badge2" data-label="{n} readers" data-label-one="{n} reader" data-theme="dark" async></script>
<script>window.__counts=[];(function w(){if(window.presence&&presence.on){presence.on('count',n=>window.__counts.push(n))}else{setTimeout(w,20)}})();</script>
</body></html>`, presenceURL.Load(), room)
	}))
	t.Cleanup(hs.Close)
	return hs
}

// shadowJS finds the widget's shadow root at or under the element sel.
const shadowJS = `((sel) => {
	const h = document.querySelector(sel);
	const el = h && (h.shadowRoot ? h : [...h.querySelectorAll('*')].find(e => e.shadowRoot));
	return el ? el.shadowRoot : null;
})`

// badgeText is JS for the text inside the widget's shadow DOM at sel.
func badgeText(sel string) string {
	return `(r => r ? r.textContent.replace(/\s+/g, ' ').trim() : '')(` + shadowJS + `('` + sel + `'))`
}

// badgeStyle is JS for a computed style property of the badge at sel.
func badgeStyle(sel, prop string) string {
	return `getComputedStyle(` + shadowJS + `('` + sel + `').querySelector('*:not(style)')).` + prop
}

// The widget on a page of another origin works when that origin is
// allowed (its badge and its JS API), and is refused when it is not.
func TestBrowserWidgetOnAnotherOrigin(t *testing.T) {
	b := browser(t)
	var allowedURL, refusingURL atomic.Value
	host := hostPage(t, &allowedURL, "article")
	other := hostPage(t, &refusingURL, "article")
	allowing := browserServer(t, "--allowed-origins", host.URL)
	refusing := browserServer(t, "--allowed-origins", "https://somewhere-else.example")
	allowedURL.Store(allowing.URL)
	refusingURL.Store(refusing.URL)

	tb, _ := tab(t, newProfile(t, b), host.URL)
	waitBadge(t, tb, "#badge", "1 person viewing")
	if counts := eval[[]int](t, tb, `window.__counts`); len(counts) == 0 || counts[len(counts)-1] != 1 {
		t.Errorf("presence.on('count') got %v, want ... 1", counts)
	}
	// The host page's CSS does not reach inside: the badge keeps its own
	// small type.
	size := eval[string](t, tb, badgeStyle("#badge", "fontSize"))
	if size == "40px" {
		t.Errorf("the host page's font size reached the widget")
	}
	// The host page keeps its own styles: the widget's do not leak out.
	if color := eval[string](t, tb, `getComputedStyle(document.getElementById('second')).color`); color != "rgb(170, 0, 0)" {
		t.Errorf("the host page's paragraph turned %s", color)
	}
	// data- attributes set the label and the look.
	waitBadge(t, tb, "#badge2", "1 reader") // data-label-one
	bgOf := func(sel string) string { return eval[string](t, tb, badgeStyle(sel, "backgroundColor")) }
	if light, dark := bgOf("#badge"), bgOf("#badge2"); light == dark {
		t.Errorf("data-theme=dark changed nothing (both %s)", light)
	}
	tb2, _ := tab(t, newProfile(t, b), host.URL)
	waitBadge(t, tb2, "#badge", "2 people viewing")
	screenshot(t, tb2, "screenshot-widget.png")

	// Refused: the page of an origin not allowed opens no stream.
	tr, _ := tab(t, newProfile(t, b), other.URL)
	time.Sleep(time.Second) // an absence: give the widget time to try
	if got := eval[string](t, tr, badgeText("#badge")); strings.Contains(got, "1 person") {
		t.Errorf("a refused origin's badge shows %q", got)
	}
	if _, _, body := get(t, refusing.URL+"/api/rooms/article"); !strings.Contains(body, `"count":0`) {
		t.Errorf("the refusing service counted someone: %s", body)
	}
}

func waitBadge(t *testing.T, tb context.Context, sel, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for got := ""; got != want; got = eval[string](t, tb, badgeText(sel)) {
		if time.Now().After(deadline) {
			t.Fatalf("badge %s shows %q, want %q", sel, got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// contrastJS returns the WCAG contrast ratio of an element's text against
// the first opaque background behind it.
const contrastJS = `(id) => {
	const rgb = s => (s.match(/[\d.]+/g) || []).map(Number);
	const lum = ([r, g, b]) => { const f = c => { c /= 255; return c <= 0.03928 ? c / 12.92 : Math.pow((c + 0.055) / 1.055, 2.4); }; return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b); };
	const el = document.getElementById(id);
	let bg = null;
	for (let e = el; e && !bg; e = e.parentElement) { const c = rgb(getComputedStyle(e).backgroundColor); if (c.length >= 3 && (c.length < 4 || c[3] > 0.99)) bg = c; }
	bg = bg || [255, 255, 255];
	const a = lum(rgb(getComputedStyle(el).color)), b = lum(bg);
	return (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
}`

// The demo page on a phone: no sideways scrolling, the count in an
// aria-live region, text that passes WCAG AA contrast, another room
// reached with the keyboard alone, a chart drawn, and nothing loaded from
// another host.
func TestBrowserDemoPageOnAPhone(t *testing.T) {
	s := browserServer(t)
	tb, _ := tab(t, newProfile(t, browser(t)), "about:blank")
	if err := chromedp.Do(tb, chromedp.EmulateViewport(360, 740, chromedp.EmulateScale(2), chromedp.EmulateMobile), chromedp.Navigate(s.URL+"/?room=phone")); err != nil {
		t.Fatal(err)
	}
	waitTabs(t, 10*time.Second, 1, tb)
	if w := eval[int](t, tb, `document.documentElement.scrollWidth`); w > 360 {
		t.Errorf("the page is %d px wide on a 360 px screen", w)
	}
	if live := eval[string](t, tb, `document.getElementById('count').closest('[aria-live]')?.getAttribute('aria-live') || ''`); live != "polite" {
		t.Errorf("the count is in no aria-live region (%q)", live)
	}
	for _, id := range []string{"count", "label", "state", "room", "connections"} {
		if c := eval[float64](t, tb, "("+contrastJS+")('"+id+"')"); c < 4.5 {
			t.Errorf("#%s has a contrast of %.2f, want at least 4.5 (WCAG AA)", id, c)
		}
	}
	// The chart is drawn: sized to its box (not a blank canvas's 300 px),
	// within the screen, with pixels painted, and described for readers.
	const chartJS = `(() => { const c = document.getElementById('chart'), r = c.getBoundingClientRect();
		return c.width === Math.round(r.width * devicePixelRatio) && r.width > 0 && r.width <= 360 &&
			c.getContext('2d').getImageData(0, 0, c.width, c.height).data.some((v, i) => i % 4 === 3 && v > 0) &&
			c.getAttribute('aria-label').startsWith('People in the last 5 minutes'); })()`
	for end := time.Now().Add(5 * time.Second); !eval[bool](t, tb, chartJS); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(end) {
			t.Errorf("no chart drawn that fits the screen")
			break
		}
	}
	if others := eval[[]string](t, tb, `performance.getEntriesByType('resource').map(r => r.name).filter(u => new URL(u).origin !== location.origin)`); len(others) != 0 {
		t.Errorf("the page loaded from other hosts: %v", others)
	}
	// Another room with the keyboard: type its name, press Enter.
	if err := chromedp.Do(tb, chromedp.Focus(chromedp.CSS("#room-input")), chromedp.KeyEvent("team-42\r")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	const roomJS = `(document.getElementById('room') || {}).textContent || ''`
	for room := ""; room != "team-42"; room, _ = tryEval[string](tb, roomJS, time.Second) {
		if time.Now().After(deadline) {
			t.Fatalf("Enter in the room field did not switch to team-42 (at %s)", eval[string](t, tb, `location.href`))
		}
		time.Sleep(20 * time.Millisecond)
	}
	waitTabs(t, 10*time.Second, 1, tb)
}
