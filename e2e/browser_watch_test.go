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

// listPage starts the service for browser tests and serves a page of
// another origin, which it allows: a list of n products, each with a badge
// that watches its room (p-0 ... p-{n-1}), on the service's widget; the
// page itself is counted in room "list", which a badge in its title
// watches too (a room's own page in its list). window.addProducts(from,
// to) appends more, as an infinite list would.
func listPage(t *testing.T, n int) (pageURL string, s *testServer) {
	t.Helper()
	var presenceURL atomic.Value
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		var items strings.Builder
		for i := range n {
			fmt.Fprintf(&items, "<li>Product %d <span data-presence-watch=\"p-%d\"></span></li>\n", i, i)
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><html><head><meta charset="utf-8"><title>Products</title></head>
<body><h1>Products <span data-presence-watch="list"></span></h1><p>On this list now: <span id="me"></span></p><ul id="list">%s</ul>
<script>window.addProducts = (from, to) => { for (let i = from; i < to; i++) {
  const li = document.createElement('li'); li.textContent = 'Product ' + i + ' ';
  const s = document.createElement('span'); s.dataset.presenceWatch = 'p-' + i; li.appendChild(s);
  document.getElementById('list').appendChild(li); } };</script>
<script src="%s/widget.js" data-room="list" data-target="#me" async></script>
</body></html>`, items.String(), presenceURL.Load())
	}))
	t.Cleanup(hs.Close)
	s = browserServer(t, "--allowed-origins", hs.URL)
	presenceURL.Store(s.URL)
	return hs.URL, s
}

// badgesJS reads every watch badge of a page: room -> its text.
const badgesJS = `Object.fromEntries([...document.querySelectorAll('[data-presence-watch]')].map(e => {
	const b = e.querySelector('presence-badge');
	return [e.dataset.presenceWatch, b && b.shadowRoot ? b.shadowRoot.textContent.replace(/\s+/g, ' ').trim() : ''];
}))`

// waitBadges waits until every tab shows text want[room] on each room's
// badge, and rest on all its other badges ("" for any).
func waitBadges(t *testing.T, timeout time.Duration, want map[string]string, rest string, tabs ...context.Context) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		bad := ""
		for i, tb := range tabs {
			got := eval[map[string]string](t, tb, badgesJS)
			for room, text := range got {
				w, ok := want[room]
				if !ok {
					w = rest
				}
				if w != "" && text != w {
					bad = fmt.Sprintf("tab %d: badge %s shows %q, want %q", i, room, text, w)
					break
				}
			}
			for room := range want {
				if _, ok := got[room]; !ok {
					bad = fmt.Sprintf("tab %d has no badge %s", i, room)
				}
			}
			if bad != "" {
				break
			}
		}
		if bad == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", timeout, bad)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// here is what the list page's badges show with only its viewer in
// room list: the rooms and texts of kv besides ("p-3", "1 viewing", ...).
func here(kv ...string) map[string]string {
	m := map[string]string{"list": "1 viewing"}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

// joinRoom is one more person (a visitor id of their own) in room, until closed.
func joinRoom(t *testing.T, s *testServer, room string) *sseClient {
	t.Helper()
	c := dial(t, s, "/rooms/"+room+"/events?visitor="+randVisitor())
	c.waitFor(t, 5*time.Second, "first count in "+room, func() bool { return len(c.Counts()) > 0 })
	return c
}

// waitOneStream waits until the service holds one stream of the browser
// (others: the test's own streams besides) and checks that it stays at one
// for a while: the page's 40 rooms and its own ride on one stream.
func waitOneStream(t *testing.T, s *testServer, others int) {
	t.Helper()
	want := float64(1 + others)
	waitUntil(t, 10*time.Second, fmt.Sprintf("%v streams open", want), func() bool {
		return metric(t, s, "presence_streams_open") == want
	})
	for end := time.Now().Add(1500 * time.Millisecond); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		if n := metric(t, s, "presence_streams_open"); n != want {
			t.Fatalf("the service holds %v streams, want %v: the browser's and the test's %d", n, want, others)
		}
	}
	if _, streams := roomStreams(t, s.URL, "list"); streams != 1 {
		t.Fatalf("room list has %d streams, want the page's 1", streams)
	}
}

// A page of 40 badges, each of its own room, over plain HTTP/1.1: one
// stream carries them all (and the page's own room), every badge shows
// its room's count at once and follows it as people come and go; with ten
// such tabs open it is still one stream and all of them stay live; badges
// added to a page later go live too.
func TestBrowserFortyBadgesOneStream(t *testing.T) {
	page, s := listPage(t, 40)
	profile := newProfile(t, browser(t))

	first, _ := tab(t, profile, page)
	start := time.Now()
	waitBadges(t, 15*time.Second, here(), "0 viewing", first)
	waitBadge(t, first, "#me", "1 person viewing")
	t.Logf("40 badges live %v after the page loaded", time.Since(start).Round(time.Millisecond))
	if got := len(eval[map[string]string](t, first, badgesJS)); got != 41 {
		t.Fatalf("%d badges, want 40 and the page's own room's", got)
	}
	// Plain http://: browsers speak HTTP/2 only over TLS, so this is
	// HTTP/1.1, six connections per host at most.
	if !strings.HasPrefix(s.URL, "http://") || !strings.HasPrefix(page, "http://") {
		t.Fatalf("the service at %s and the page at %s, want plain http://", s.URL, page)
	}
	waitOneStream(t, s, 0)
	if people, _ := roomStreams(t, s.URL, "p-3"); people != 0 {
		t.Errorf("watching p-3 counted %d people in it, want 0", people)
	}

	// People come and go in the watched rooms: the badges follow.
	a := joinRoom(t, s, "p-3")
	b1, b2 := joinRoom(t, s, "p-17"), joinRoom(t, s, "p-17")
	start = time.Now()
	waitBadges(t, 5*time.Second, here("p-3", "1 viewing", "p-17", "2 viewing"), "0 viewing", first)
	t.Logf("joins showed %v later", time.Since(start).Round(time.Millisecond))
	waitOneStream(t, s, 3)
	b1.Close()
	waitBadges(t, 5*time.Second, here("p-3", "1 viewing", "p-17", "1 viewing"), "0 viewing", first)
	a.Close()
	b2.Close()
	waitBadges(t, 5*time.Second, here(), "0 viewing", first)

	// Ten tabs of that browser: one stream still, all live.
	tabs := append([]context.Context{first}, openTabs(t, profile, page, 9)...)
	waitBadges(t, 15*time.Second, here(), "0 viewing", tabs...)
	waitOneStream(t, s, 0)
	c := joinRoom(t, s, "p-25")
	waitBadges(t, 5*time.Second, here("p-25", "1 viewing"), "0 viewing", tabs...)
	c.Close()
	waitBadges(t, 5*time.Second, here(), "0 viewing", tabs...)

	// Badges added later, in a tab that leads the stream and in one that
	// does not, join the stream without a reload.
	leading, following := -1, -1
	for i, tb := range tabs {
		if eval[bool](t, tb, `presence.room().leader`) {
			leading = i
		} else if following < 0 {
			following = i
		}
	}
	if leading < 0 || following < 0 {
		t.Fatalf("tab %d leads, tab %d follows; want one of each", leading, following)
	}
	for i, added := range []struct {
		tab      int
		from, to int
	}{{leading, 40, 45}, {following, 45, 50}} {
		eval[any](t, tabs[added.tab], fmt.Sprintf(`addProducts(%d, %d)`, added.from, added.to))
		room := fmt.Sprintf("p-%d", added.from+2)
		p := joinRoom(t, s, room)
		start := time.Now()
		waitBadges(t, 10*time.Second, here(room, "1 viewing"), "0 viewing", tabs[added.tab])
		t.Logf("added badges (%d) live %v after a join in one of them", i, time.Since(start).Round(time.Millisecond))
		p.Close()
		waitOneStream(t, s, 0)
	}
	waitBadges(t, 10*time.Second, here(), "0 viewing", tabs...)
}

// boardJS reads the board view: room -> its count, state, and whether its
// sparkline is drawn and described.
const boardJS = `Object.fromEntries([...document.querySelectorAll('#rooms .room')].map(li => [li.dataset.room,
	li.querySelector('.count').textContent + ' ' + li.dataset.state + ' ' +
	(li.querySelector('svg .line').getAttribute('d') ? 'drawn' : 'blank') + ' ' +
	((li.querySelector('svg').getAttribute('aria-label') || '').match(/now \d+/) || ['undescribed'])[0]]))`

// The board view, /?watch=a,b,c: each room's count and a sparkline, live,
// counted in none of the rooms, and usable on a phone.
func TestBrowserBoardView(t *testing.T) {
	s := browserServer(t)
	b := browser(t)
	tb, _ := tab(t, newProfile(t, b), s.URL+"/?watch=standup,support,sales,docs,blog,careers")
	joinRoom(t, s, "standup")
	waitBoard := func(want map[string]string) {
		t.Helper()
		var got map[string]string
		for end := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			got = eval[map[string]string](t, tb, boardJS)
			ok := len(got) == 6
			for room, w := range want {
				ok = ok && got[room] == w
			}
			if ok {
				return
			}
			if time.Now().After(end) {
				t.Fatalf("the board shows %v, want %v", got, want)
			}
		}
	}
	waitBoard(map[string]string{"standup": "1 live drawn now 1", "sales": "0 live drawn now 0"})
	for range 3 {
		joinRoom(t, s, "support")
	}
	joinRoom(t, s, "docs")
	waitBoard(map[string]string{"standup": "1 live drawn now 1", "support": "3 live drawn now 3", "docs": "1 live drawn now 1"})
	if people, _ := roomStreams(t, s.URL, "support"); people != 3 {
		t.Errorf("support has %d people, want the 3 who joined (the board only watches)", people)
	}
	// Some comings and goings, a second apart, to draw the sparklines of the
	// screenshot (these sleeps make the picture; no condition waits on them).
	in := map[string][]*sseClient{}
	for i, step := range []string{"sales", "blog", "sales", "sales", "-sales", "careers", "sales", "-blog"} {
		if room, leave := strings.CutPrefix(step, "-"); leave {
			in[room][0].Close()
			in[room] = in[room][1:]
		} else {
			in[room] = append(in[room], joinRoom(t, s, room))
		}
		if i < 7 {
			time.Sleep(time.Second)
		}
	}
	waitBoard(map[string]string{"sales": "3 live drawn now 3", "blog": "0 live drawn now 0", "careers": "1 live drawn now 1"})
	screenshot(t, tb, "screenshot-board.png")

	phone, _ := tab(t, newProfile(t, b), "about:blank")
	if err := chromedp.Do(phone, chromedp.EmulateViewport(360, 740, chromedp.EmulateScale(2), chromedp.EmulateMobile), chromedp.Navigate(s.URL+"/?watch=standup,support,sales")); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 10*time.Second, "the board live on a phone", func() bool {
		return eval[string](t, phone, `document.getElementById('state').textContent`) == "live"
	})
	if w := eval[int](t, phone, `document.documentElement.scrollWidth`); w > 360 {
		t.Errorf("the board is %d px wide on a 360 px screen", w)
	}
	if c := eval[float64](t, phone, "("+contrastJS+")('state')"); c < 4.5 {
		t.Errorf("the state has a contrast of %.2f, want at least 4.5", c)
	}
	if n := eval[int](t, phone, `[...document.querySelectorAll('#rooms .room')].filter(li => document.getElementById(li.getAttribute('aria-labelledby'))?.textContent === li.dataset.room && li.querySelector('svg[role=img][aria-label]')).length`); n != 3 {
		t.Errorf("%d of 3 rooms are labelled with their name and a described sparkline", n)
	}
}

// A page of more badges than a stream may follow (100): the first 100
// rooms are live on one stream, which the service accepts; the others wait,
// shown as "–", and go live once badges before them leave the page.
func TestBrowserBadgesBeyondTheLimit(t *testing.T) {
	page, s := listPage(t, 105)
	tb, _ := tab(t, newProfile(t, browser(t)), page)

	// In page order: list (the page's own room), p-0 ... p-98 fill the 100.
	waiting := here()
	for i := 99; i < 105; i++ {
		waiting[fmt.Sprintf("p-%d", i)] = "–"
	}
	waitBadges(t, 15*time.Second, waiting, "0 viewing", tb)
	waitOneStream(t, s, 0)

	// Ten products leave the page: the six waiting rooms get on the stream.
	eval[any](t, tb, `[...document.querySelectorAll('#list li')].slice(0, 10).forEach(li => li.remove())`)
	c := joinRoom(t, s, "p-104")
	waitBadges(t, 10*time.Second, here("p-104", "1 viewing"), "0 viewing", tb)
	c.Close()
	waitOneStream(t, s, 0)
}
