package e2e

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// A page of another site that frames /events holds no stream while origins
// are restricted: the frame's request carries no Origin, so only its
// Sec-Fetch-Site (cross-site) and Sec-Fetch-Mode (navigate) tell it from
// curl. It is refused and counted under reason="origin". The same frame of
// a service that allows every origin is counted, which shows the frame
// really asked for its stream.
func TestBrowserFrameOfAnotherSiteHoldsNoStream(t *testing.T) {
	restricted := browserServer(t, "--allowed-origins", "https://somewhere-else.example")
	open := browserServer(t, "--allowed-origins", "*")
	// The page comes from 127.0.0.1 and the frames from localhost: two
	// sites to the browser (not only two origins).
	frameURL := func(s *testServer) string {
		_, port, err := net.SplitHostPort(s.Addr)
		if err != nil {
			t.Fatal(err)
		}
		return "http://localhost:" + port + "/rooms/framed/events"
	}
	page := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		// The frames are added after the page's load event: a frame whose
		// stream never ends would hold the event, and the tab, forever.
		fmt.Fprintf(w, `<!doctype html><html><body><h1>A page of another site</h1>
<script>addEventListener('load', () => setTimeout(() => {
	for (const src of [%q, %q]) {
		const f = document.createElement('iframe');
		f.src = src;
		document.body.appendChild(f);
	}
}));</script>
</body></html>`, frameURL(restricted), frameURL(open))
	}))
	t.Cleanup(page.Close)
	if !strings.HasPrefix(page.URL, "http://127.0.0.1:") {
		t.Fatalf("the page is served from %s, want 127.0.0.1", page.URL)
	}

	b := browser(t)
	tab(t, newProfile(t, b), page.URL)

	// The open service counts the frame: the frames loaded.
	waitUntil(t, 15*time.Second, "the open service to count the frame", func() bool {
		_, _, body := get(t, open.URL+"/api/rooms/framed")
		return strings.Contains(body, `"count":1`)
	})
	// The restricted one refused it, under origin, and counts no one.
	const refused = `presence_refused_total{reason="origin"}`
	waitUntil(t, 10*time.Second, "the restricted service to see the frame", func() bool {
		return metric(t, restricted, "presence_connects_total") > 0 || metric(t, restricted, refused) > 0
	})
	if v := metric(t, restricted, "presence_connects_total"); v != 0 {
		_, _, body := get(t, restricted.URL+"/api/rooms/framed")
		t.Fatalf("the restricted service opened %v streams for a frame of another site: %s", v, body)
	}
	if v := metric(t, restricted, refused); v < 1 {
		t.Errorf("%s = %v, want at least 1", refused, v)
	}
	if _, _, body := get(t, restricted.URL+"/api/rooms/framed"); !strings.Contains(body, `"count":0`) {
		t.Errorf("the restricted service counts the frame: %s", body)
	}
}
