package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Ten tabs of one browser on one origin all stay live: every tab shows
// the room's count and follows it as another person comes and goes. A
// browser opens at most six HTTP/1.1 connections to a host, and an
// EventSource holds one for its life, so ten tabs with a stream each cannot
// all be live over HTTP/1.1:
//   - over HTTP/1.1 the widget's tabs share one stream: one tab holds it
//     and relays it to the others, and the service sees one stream; when
//     that tab closes, another takes over;
//   - over HTTP/1.1 without sharing, six tabs are live and the other four
//     wait: the service sees six streams and never a seventh, which is what
//     the sharing is for;
//   - over HTTP/2 each tab has a stream of its own, all on one connection:
//     the service sees ten.
func TestBrowserTenTabsStayLive(t *testing.T) {
	b := browser(t)
	s := browserServer(t)

	t.Run("HTTP/1.1 sharing one stream", func(t *testing.T) {
		url := s.URL + "/?room=ten"
		shared := openTabs(t, newProfile(t, b), url, 10)
		took := waitTabs(t, 15*time.Second, 1, shared...)
		if !eval[bool](t, shared[0], `presence.sharing`) {
			t.Fatalf("tab sharing is off in Chromium")
		}
		waitRoom(t, s.URL, "ten", 1, 1)
		followCount(t, b, url, shared)
		waitRoom(t, s.URL, "ten", 1, 1)
		t.Logf("10 of 10 tabs live within %v on one stream", took.Round(time.Millisecond))

		// The leader's tab closes: another tab takes the stream over.
		leader, leaders := -1, 0
		for i, tb := range shared {
			if eval[bool](t, tb, `presence.room('ten').leader`) {
				leader, leaders = i, leaders+1
			}
		}
		if leaders != 1 {
			t.Fatalf("%d tabs lead, want 1", leaders)
		}
		chromedp.Cancel(shared[leader])
		rest := append(append([]context.Context{}, shared[:leader]...), shared[leader+1:]...)
		waitTabs(t, 10*time.Second, 1, rest...)
		waitRoom(t, s.URL, "ten", 1, 1)
		followCount(t, b, url, rest)
	})

	t.Run("HTTP/1.1 a stream per tab", func(t *testing.T) {
		profile := newProfile(t, b)
		solo := openTabsNoWait(t, profile, s.URL+"/?room=solo&presence-share=0", 10)
		defer chromedp.Cancel(profile) // all its tabs at once
		// Six tabs' streams take the six connections; the other four tabs
		// wait for one, for their page or their stream, and go on waiting.
		waitRoom(t, s.URL, "solo", 1, 6)
		for end := time.Now().Add(2 * time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
			if _, streams := roomStreams(t, s.URL, "solo"); streams > 6 {
				t.Fatalf("the service holds %d streams of one browser over HTTP/1.1, want at most 6", streams)
			}
		}
		if live := liveTabs(solo); live != 6 {
			t.Errorf("%d of 10 tabs live, want the 6 that hold a connection", live)
		}
	})

	t.Run("HTTP/2 a stream per tab", func(t *testing.T) {
		cert, key, _ := selfSigned(t, t.TempDir())
		hs := startTLSServer(t, cert, key)
		url := hs + "/?room=h2&presence-share=0"
		h2 := openTabs(t, newProfile(t, b), url, 10)
		took := waitTabs(t, 15*time.Second, 1, h2...)
		if proto := eval[string](t, h2[0], `performance.getEntriesByType('navigation')[0].nextHopProtocol`); proto != "h2" {
			t.Errorf("the page came over %q, want h2", proto)
		}
		waitRoom(t, hs, "h2", 1, 10)
		followCount(t, b, url, h2)
		t.Logf("10 of 10 tabs live within %v, a stream each", took.Round(time.Millisecond))
	})
}

// roomStreams is what the service at base says of room: the people in it
// and their open streams.
func roomStreams(t *testing.T, base, room string) (people, streams int) {
	t.Helper()
	code, _, body := getInsecure(t, base+"/api/rooms/"+room)
	var v struct{ Count, Connections int }
	if err := json.Unmarshal([]byte(body), &v); code != 200 || err != nil {
		t.Fatalf("GET /api/rooms/%s: %d %s", room, code, body)
	}
	return v.Count, v.Connections
}

// waitRoom waits until the service at base counts people in room, on
// streams open streams.
func waitRoom(t *testing.T, base, room string, people, streams int) {
	t.Helper()
	waitUntil(t, 10*time.Second, fmt.Sprintf("room %s at %d people on %d streams", room, people, streams), func() bool {
		p, s := roomStreams(t, base, room)
		return p == people && s == streams
	})
}

// followCount checks that every one of tabs follows its room's count:
// another person (a browser profile of their own) opens url, and every tab
// shows 2; they close it, and every tab shows 1 again.
func followCount(t *testing.T, b context.Context, url string, tabs []context.Context) {
	t.Helper()
	other, closeOther := tab(t, newProfile(t, b), url)
	waitTabs(t, 10*time.Second, 2, append([]context.Context{other}, tabs...)...)
	closeOther()
	waitTabs(t, 10*time.Second, 1, tabs...)
}
