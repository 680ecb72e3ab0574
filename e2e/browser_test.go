package e2e

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// RequireBrowserEnv, set to 1 (as .ci/run does), turns a missing Chromium
// from a skip into a failure.
const requireBrowserEnv = "PRESENCE_REQUIRE_BROWSER"

// browser starts a headless Chromium for the test and returns its context;
// profiles made from it (newProfile) have their own cookies and storage.
func browser(t *testing.T) context.Context {
	t.Helper()
	var path string
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			path = p
			break
		}
	}
	if path == "" {
		msg := "Chromium is not installed (Debian: apt-get install -y chromium)"
		if os.Getenv(requireBrowserEnv) == "1" {
			t.Fatalf("%s, and %s=1", msg, requireBrowserEnv)
		}
		t.Skipf("%s; set %s=1 to make this a failure", msg, requireBrowserEnv)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.WindowSize(1000, 800),
		chromedp.Flag("ignore-certificate-errors", true), // the tests' own TLS certificate
		chromedp.UserDataDir(t.TempDir()),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	if err := chromedp.Do(ctx); err != nil {
		cancel()
		cancelAlloc()
		t.Fatalf("start Chromium: %v", err)
	}
	t.Cleanup(func() { cancel(); cancelAlloc() })
	return ctx
}

// newProfile is a fresh browser profile (its own cookies and storage),
// like another person's browser.
func newProfile(t *testing.T, b context.Context) context.Context {
	t.Helper()
	ctx, cancel := chromedp.NewContext(b, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	// Running it makes the browser context (and a blank tab), so that tabs
	// made from it belong to it.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("new profile: %v", err)
	}
	return ctx
}

// tab opens url in a new tab of profile and returns the tab and a cancel
// that closes it.
func tab(t *testing.T, profile context.Context, url string) (context.Context, context.CancelFunc) {
	t.Helper()
	ctx, cancel := chromedp.NewContext(profile)
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx, chromedp.Navigate(url)); err != nil {
		t.Fatalf("open %s: %v", url, err)
	}
	return ctx, cancel
}

// eval evaluates a JavaScript expression in a tab.
func eval[T any](t *testing.T, tab context.Context, js string) T {
	t.Helper()
	v, err := tryEval[T](tab, js, 5*time.Second)
	if err != nil {
		t.Fatalf("evaluate %s: %v", js, err)
	}
	return v
}

// tryEval evaluates js within timeout, for pages that may be between
// documents (navigating) or never load.
func tryEval[T any](tab context.Context, js string, timeout time.Duration) (T, error) {
	ctx, cancel := context.WithTimeout(tab, timeout)
	defer cancel()
	return chromedp.Run(ctx, chromedp.Evaluate[T](js))
}

// pageState is what the demo page shows.
type pageState struct {
	Count, State, Label string
}

func (p pageState) String() string { return p.Count + " " + p.Label + " (" + p.State + ")" }

// pageStateJS reads a pageState from the demo page.
const pageStateJS = `({
	Count: (document.getElementById('count') || {}).textContent || '',
	State: (document.getElementById('state') || {}).textContent || '',
	Label: (document.getElementById('label') || {}).textContent || '',
})`

func demo(t *testing.T, tab context.Context) pageState {
	t.Helper()
	return eval[pageState](t, tab, pageStateJS)
}

// waitTabs waits until every tab shows count n, live.
func waitTabs(t *testing.T, timeout time.Duration, n int, tabs ...context.Context) time.Duration {
	t.Helper()
	start := time.Now()
	want := strconv.Itoa(n)
	for {
		ok := true
		var seen []string
		for _, tb := range tabs {
			p := demo(t, tb)
			seen = append(seen, p.String())
			if strings.TrimSpace(p.Count) != want || strings.TrimSpace(p.State) != "live" {
				ok = false
			}
		}
		if ok {
			return time.Since(start)
		}
		if time.Since(start) > timeout {
			t.Fatalf("after %v, want every tab at %d live; they show %q", timeout, n, seen)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// screenshot takes a PNG of the tab, saved under docs/ for the README with
// PRESENCE_UPDATE_SCREENSHOTS=1.
func screenshot(t *testing.T, tab context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(tab, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	// The README's pictures are rewritten only when asked for, so that a
	// test run leaves the work tree as it was.
	dir := t.TempDir()
	if os.Getenv("PRESENCE_UPDATE_SCREENSHOTS") == "1" {
		dir = "docs"
	}
	if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// browserServer runs the service for browser tests: a short grace, so that
// a closed tab shows within a second, and a short retry, so that pages
// reconnect quickly after a restart.
func browserServer(t *testing.T, args ...string) *testServer {
	return startServer(t, append([]string{"--grace", "300ms", "--retry", "500ms"}, args...)...)
}

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
	if one := demo(t, more[2]); one.Label != "people here now" {
		t.Logf("label %q", one.Label)
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

// openTabs opens n tabs of one profile on url and returns them.
func openTabs(t *testing.T, profile context.Context, url string, n int) []context.Context {
	t.Helper()
	var tabs []context.Context
	for range n {
		tb, _ := tab(t, profile, url)
		tabs = append(tabs, tb)
	}
	return tabs
}

// openTabsNoWait opens n tabs of one profile on url without waiting for
// their pages to load, which some may never do.
func openTabsNoWait(t *testing.T, profile context.Context, url string, n int) []context.Context {
	t.Helper()
	var tabs []context.Context
	for range n {
		ctx, cancel := chromedp.NewContext(profile)
		t.Cleanup(cancel)
		if err := chromedp.Do(ctx); err != nil {
			t.Fatalf("new tab: %v", err)
		}
		nav, stop := context.WithTimeout(ctx, 500*time.Millisecond)
		_ = chromedp.Do(nav, chromedp.Navigate(url)) // may not load: that is measured
		stop()
		tabs = append(tabs, ctx)
	}
	return tabs
}

// liveTabs counts the tabs that show a live count; a tab whose page is
// still loading counts as not live.
func liveTabs(tabs []context.Context) int {
	n := 0
	for _, tb := range tabs {
		p, err := tryEval[pageState](tb, pageStateJS, 300*time.Millisecond)
		if err == nil && p.State == "live" && p.Count != "" {
			n++
		}
	}
	return n
}

// Ten tabs on one origin all stay live: over HTTP/1.1 through tab sharing
// (one tab holds the stream and relays it), over HTTP/2 on their own
// streams. Over HTTP/1.1 without sharing, the browser's six connections per
// host hold the rest back: measured and logged, not shipped.
func TestBrowserTenTabsStayLive(t *testing.T) {
	b := browser(t)
	s := browserServer(t)

	shared := openTabs(t, newProfile(t, b), s.URL+"/?room=ten", 10)
	took := waitTabs(t, 15*time.Second, 1, shared...)
	if c := eval[bool](t, shared[0], `presence.sharing`); !c {
		t.Errorf("tab sharing is off in Chromium")
	}
	_, _, body := get(t, s.URL+"/api/rooms/ten")
	t.Logf("HTTP/1.1, tabs sharing a stream: 10 of 10 tabs live within %v; the service sees %s", took.Round(time.Millisecond), strings.TrimSpace(body))

	// The leader's tab closes: another tab takes over.
	leader := -1
	for i, tb := range shared {
		if eval[bool](t, tb, `presence.room(new URLSearchParams(location.search).get('room') || 'lobby').leader`) {
			leader = i
		}
	}
	if leader < 0 {
		t.Fatalf("no tab leads")
	}
	chromedp.Cancel(shared[leader])
	rest := append(append([]context.Context{}, shared[:leader]...), shared[leader+1:]...)
	waitTabs(t, 10*time.Second, 1, rest...)

	// Without sharing, over HTTP/1.1: what users would get.
	soloProfile := newProfile(t, b)
	solo := openTabsNoWait(t, soloProfile, s.URL+"/?room=solo&presence-share=0", 10)
	time.Sleep(3 * time.Second) // measuring how many get through in this time
	t.Logf("HTTP/1.1 without sharing: %d of 10 tabs live after 3 s", liveTabs(solo))
	chromedp.Cancel(soloProfile) // all its tabs at once

	// Over HTTP/2 (TLS), without sharing: every tab has its own stream on
	// one connection.
	cert, key, _ := selfSigned(t, t.TempDir())
	hs := startTLSServer(t, cert, key)
	h2 := openTabs(t, newProfile(t, b), hs+"/?room=h2&presence-share=0", 10)
	took = waitTabs(t, 15*time.Second, 1, h2...)
	if proto := eval[string](t, h2[0], `performance.getEntriesByType('navigation')[0].nextHopProtocol`); proto != "h2" {
		t.Errorf("the page came over %q, want h2", proto)
	}
	_, _, body = getInsecure(t, hs+"/api/rooms/h2")
	t.Logf("HTTP/2, a stream per tab: 10 of 10 tabs live within %v; the service sees %s", took.Round(time.Millisecond), strings.TrimSpace(body))
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
	if drawn := eval[bool](t, tb, `(() => { const c = document.getElementById('chart'); return c.width > 0 && c.height > 0 && c.getBoundingClientRect().width <= 360; })()`); !drawn {
		t.Errorf("no chart that fits the screen")
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
