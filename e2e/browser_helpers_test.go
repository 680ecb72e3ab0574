package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
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
		dir = filepath.Join("..", "docs") // the module root's
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
