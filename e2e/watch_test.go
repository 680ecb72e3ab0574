package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// roomPresence returns the presence events of room a stream got so far.
func roomPresence(t *testing.T, c *sseClient, room string) []presenceEvent {
	t.Helper()
	var out []presenceEvent
	for _, d := range c.Events("presence") {
		if p := decodePresence(t, d); p.Room == room {
			out = append(out, p)
		}
	}
	return out
}

// waitRoomPresence waits until the latest presence event of room says
// people and conns.
func waitRoomPresence(t *testing.T, c *sseClient, room string, people, conns int) {
	t.Helper()
	c.waitFor(t, 5*time.Second, fmt.Sprintf("%s at %d/%d", room, people, conns), func() bool {
		ps := roomPresence(t, c, room)
		return len(ps) > 0 && ps[len(ps)-1].People == people && ps[len(ps)-1].Connections == conns
	})
}

// firstPresence checks that a stream's first presence events, in order,
// are of rooms with people and connections as want ("room:people/conns").
func firstPresence(t *testing.T, c *sseClient, want ...string) {
	t.Helper()
	c.waitFor(t, 5*time.Second, "the first presence events", func() bool { return len(c.Events("presence")) >= len(want) })
	for i, d := range c.Events("presence")[:len(want)] {
		p := decodePresence(t, d)
		if got := fmt.Sprintf("%s:%d/%d", p.Room, p.People, p.Connections); got != want[i] {
			t.Errorf("presence event %d: %s, want %s", i, got, want[i])
		}
	}
}

// A watcher gets every room's counts at once, then their changes within
// a window, coalesced, with the stream's headers, retry and heartbeats;
// it is counted in no room.
func TestWatchFollowsRooms(t *testing.T) {
	t.Parallel()
	s := startServer(t, "--window", "100ms", "--heartbeat", "300ms")
	dial(t, s, "/rooms/a/events", visitorCookie())
	dial(t, s, "/rooms/a/events", visitorCookie())
	waitUntil(t, 5*time.Second, "two in a", func() bool { return apiCount(t, s, "a") == 2 })

	w := dial(t, s, "/watch?rooms=a,b")
	if w.Status != 200 || w.Header.Get("Content-Type") != "text/event-stream" || w.Header.Get("Cache-Control") != "no-cache" || w.Header.Get("X-Accel-Buffering") != "no" {
		t.Fatalf("answer %d %v", w.Status, w.Header)
	}
	firstPresence(t, w, "a:2/2", "b:0/0")
	if lines := w.Lines(); lines[0] != "retry: 3000" {
		t.Errorf("first line %q, want the retry field", lines[0])
	}
	if apiCount(t, s, "a") != 2 || apiCount(t, s, "b") != 0 {
		t.Errorf("the watcher was counted: a %d, b %d", apiCount(t, s, "a"), apiCount(t, s, "b"))
	}
	if n := len(w.Events("user count")); n != 0 {
		t.Errorf("a watcher got %d count events, which name no room", n)
	}

	start := time.Now()
	dial(t, s, "/rooms/b/events")
	waitRoomPresence(t, w, "b", 1, 1)
	took := time.Since(start)
	t.Logf("a change in a quiet watched room came after %v", took.Round(time.Millisecond))
	if took > time.Second {
		t.Errorf("a change in a quiet room took %v to reach its watcher", took)
	}

	// A burst of 10 joins in a is coalesced as for a's own streams.
	before := len(roomPresence(t, w, "a"))
	for range 10 {
		dial(t, s, "/rooms/a/events")
	}
	waitRoomPresence(t, w, "a", 12, 12)
	if n := len(roomPresence(t, w, "a")) - before; n > 4 {
		t.Errorf("a burst of 10 joins made %d presence events, want it coalesced", n)
	}
	w.waitFor(t, 5*time.Second, "a heartbeat", func() bool { return heartbeats(w) > 0 })
	if apiCount(t, s, "a") != 12 || apiCount(t, s, "b") != 1 {
		t.Errorf("at the end a %d, b %d: the watcher was counted", apiCount(t, s, "a"), apiCount(t, s, "b"))
	}
}

// ?watch= on a room's stream: the stream is in its room as ever, and also
// gets the presence events of the rooms it watches, counted in none.
func TestWatchFromARoomStream(t *testing.T) {
	t.Parallel()
	s := startServer(t, "--window", "100ms")
	c := dial(t, s, "/rooms/r/events?watch=x,y")
	c.waitCount(t, 1)
	firstPresence(t, c, "r:1/1", "x:0/0", "y:0/0")
	dial(t, s, "/rooms/x/events")
	waitRoomPresence(t, c, "x", 1, 1)
	d := dial(t, s, "/rooms/r/events")
	c.waitCount(t, 2)
	waitRoomPresence(t, c, "r", 2, 2)
	d.Close()
	c.waitCount(t, 1)
	if apiCount(t, s, "x") != 1 || apiCount(t, s, "y") != 0 || apiCount(t, s, "r") != 1 {
		t.Errorf("counts x %d y %d r %d", apiCount(t, s, "x"), apiCount(t, s, "y"), apiCount(t, s, "r"))
	}
	// The lobby's stream takes ?watch= too.
	l := dial(t, s, "/events?watch=r")
	l.waitCount(t, 1)
	firstPresence(t, l, "lobby:1/1", "r:1/1")
}

// Each list a stream may not watch gets 400 with an error that says why,
// before anything is opened; a HEAD is answered as its GET.
func TestWatchBounds(t *testing.T) {
	t.Parallel()
	s := startServer(t, "--max-watch", "3")
	for _, tc := range []struct{ path, want string }{
		{"/watch", "rooms is missing"},
		{"/watch?rooms=", "rooms is empty"},
		{"/watch?rooms=a,b,c,d", "rooms names 4 rooms; at most 3"},
		{"/watch?rooms=a,a%20b", `room \"a b\" in rooms: room names are`},
		{"/watch?rooms=a,,b", `room \"\" in rooms`},
		{"/watch?rooms=a,b,a", `room \"a\" is repeated in rooms`},
		{"/rooms/r/events?watch=", "watch is empty"},
		{"/rooms/r/events?watch=a,b,c,d", "watch names 4 rooms; at most 3"},
		{"/rooms/r/events?watch=..", `room \"..\" in watch`},
		{"/rooms/r/events?watch=a,r", `room \"r\" in watch is the stream's own room`},
		{"/events?watch=lobby", `room \"lobby\" in watch is the stream's own room`},
	} {
		code, h, body := get(t, s.URL+tc.path)
		if code != 400 || h.Get("Content-Type") != "application/json" || !strings.Contains(body, tc.want) {
			t.Errorf("GET %s: %d %q, want 400 saying %q", tc.path, code, body, tc.want)
		}
		resp, err := http.Head(s.URL + tc.path)
		if err != nil || resp.StatusCode != 400 {
			t.Errorf("HEAD %s: %v %v", tc.path, resp, err)
		} else {
			resp.Body.Close()
		}
	}
	resp, err := http.Head(s.URL + "/watch?rooms=a,b,c")
	if err != nil || resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("HEAD of a good watch: %v %v", resp, err)
	}
	resp.Body.Close()
	if n := metric(t, s, "presence_streams_open"); n != 0 {
		t.Errorf("%v streams open after refusals and a HEAD", n)
	}
	w := dial(t, s, "/watch?rooms=a,b,c")
	firstPresence(t, w, "a:0/0", "b:0/0", "c:0/0")
}

// A private room is watched only with a token that opens it (401 without,
// 403 with one that does not, as for its streams); a public room by
// anyone, with members only for a token that opens it.
func TestWatchPrivateRooms(t *testing.T) {
	t.Parallel()
	s := startServer(t, "--token-secret", testSecret, "--private-rooms", "staff-*")
	ann := token(t, testSecret, "ann", "Ann", nil)
	dial(t, s, "/rooms/staff-a/events?token="+ann)
	dial(t, s, "/rooms/pub/events?token="+token(t, testSecret, "bo", "Bo", nil))
	waitUntil(t, 5*time.Second, "both in", func() bool { return apiCount(t, s, "pub") == 1 })

	for _, tc := range []struct {
		path string
		code int
	}{
		{"/watch?rooms=pub,staff-a", 401},
		{"/rooms/pub/events?watch=staff-a", 401},
		{"/watch?rooms=staff-a&token=" + token(t, testSecret, "cy", "", jwt.MapClaims{"rooms": []string{"pub"}}), 403},
		{"/events?watch=staff-a&token=" + token(t, testSecret, "cy", "", jwt.MapClaims{"rooms": []string{"lobby"}}), 403},
		{"/watch?rooms=pub&token=forged", 401},
	} {
		if code, _, body := get(t, s.URL+tc.path); code != tc.code {
			t.Errorf("GET %s: %d %s, want %d", tc.path, code, body, tc.code)
		}
	}
	if apiCount(t, s, "lobby") != 0 {
		t.Errorf("a refused stream joined the lobby")
	}

	// A token for staff-* sees staff-a whole, and pub's counts only.
	staff := token(t, testSecret, "dee", "Dee", jwt.MapClaims{"rooms": []string{"staff-*"}})
	w := dial(t, s, "/watch?rooms=staff-a,pub&token="+staff)
	firstPresence(t, w, "staff-a:1/1", "pub:1/1")
	if p := roomPresence(t, w, "staff-a")[0]; len(p.Members) != 1 || p.Members[0].ID != "ann" {
		t.Errorf("staff-a's members: %+v", p.Members)
	}
	if raw := w.Events("presence")[1]; strings.Contains(raw, "members") {
		t.Errorf("pub, which the token does not open, came with members: %s", raw)
	}
	// An anonymous watcher of pub gets counts only.
	a := dial(t, s, "/watch?rooms=pub")
	firstPresence(t, a, "pub:1/1")
	if raw := a.Events("presence")[0]; strings.Contains(raw, "members") {
		t.Errorf("an anonymous watcher got members: %s", raw)
	}
}

// A signed-in watcher gets a watched room's member list and its join and
// leave events, tagged with the room; an anonymous one never does.
func TestWatchMembersForSignedInOnly(t *testing.T) {
	t.Parallel()
	s := startServer(t, "--token-secret", testSecret, "--grace", "0s", "--window", "50ms")
	signed := dial(t, s, "/watch?rooms=m&token="+token(t, testSecret, "wes", "Wes", nil))
	anon := dial(t, s, "/watch?rooms=m")
	mine := dial(t, s, "/rooms/own/events?watch=m&token="+token(t, testSecret, "oz", "Oz", nil))
	for _, c := range []*sseClient{signed, anon} {
		firstPresence(t, c, "m:0/0")
	}
	firstPresence(t, mine, "own:1/1", "m:0/0")
	if p := roomPresence(t, signed, "m")[0]; p.Members == nil {
		t.Errorf("a signed-in watcher's first event has no member list")
	}

	// A publish every watcher sees first: the first after a stream's start
	// that follows members gives the whole list, as in a stream's own
	// room; the next ones say who joined and left.
	dial(t, s, "/rooms/m/events")
	for _, c := range []*sseClient{signed, anon, mine} {
		waitRoomPresence(t, c, "m", 1, 1)
	}
	bob := dial(t, s, "/rooms/m/events?token="+token(t, testSecret, "bob", "Bob", nil))
	for _, c := range []*sseClient{signed, mine} {
		c.waitFor(t, 5*time.Second, "bob's join", func() bool { return len(c.Events("join")) == 1 })
		if j := c.Events("join")[0]; j != `{"room":"m","id":"bob","name":"Bob"}` {
			t.Errorf("join event %s", j)
		}
	}
	waitRoomPresence(t, anon, "m", 2, 2)
	bob.Close()
	for _, c := range []*sseClient{signed, mine} {
		c.waitFor(t, 5*time.Second, "bob's leave", func() bool { return len(c.Events("leave")) == 1 })
		if l := c.Events("leave")[0]; l != `{"room":"m","id":"bob","name":"Bob"}` {
			t.Errorf("leave event %s", l)
		}
	}
	waitRoomPresence(t, anon, "m", 1, 1)
	if len(anon.Events("join"))+len(anon.Events("leave")) != 0 {
		t.Errorf("an anonymous watcher got member events")
	}
	for _, d := range anon.Events("presence") {
		if strings.Contains(d, "members") {
			t.Errorf("an anonymous watcher got members: %s", d)
		}
	}
}

// A watcher that reconnects gets the current counts of every room at
// once, whatever Last-Event-ID says.
func TestWatchReconnect(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	w := dial(t, s, "/watch?rooms=a,b")
	firstPresence(t, w, "a:0/0", "b:0/0")
	w.Close()
	dial(t, s, "/rooms/a/events")
	waitUntil(t, 5*time.Second, "one in a", func() bool { return apiCount(t, s, "a") == 1 })
	for _, id := range []string{"7", "999999", "junk"} {
		again := dial(t, s, "/watch?rooms=a,b", "Last-Event-ID: "+id)
		firstPresence(t, again, "a:1/1", "b:0/0")
		again.Close()
	}
}

// Rooms that only watchers follow are bounded apart from the rooms of
// people: a watcher of many made-up rooms cannot keep people out, nor
// make the node hold more such rooms than --max-rooms; they are released
// when their watchers go.
func TestWatchedRoomsAreBounded(t *testing.T) {
	t.Parallel()
	s := startServer(t, "--max-rooms", "4")
	w1 := dial(t, s, "/watch?rooms=e1,e2,e3")
	w2 := dial(t, s, "/watch?rooms=e3,e4")
	firstPresence(t, w2, "e3:0/0", "e4:0/0")
	if n := metric(t, s, "presence_watched_rooms"); n != 4 {
		t.Fatalf("%v watched rooms, want 4", n)
	}
	if code, _, body := get(t, s.URL+"/watch?rooms=e1,e5"); code != 503 || !strings.Contains(body, "rooms") {
		t.Errorf("a fifth watched-only room: %d %s, want 503", code, body)
	}
	if code, _, _ := get(t, s.URL+"/rooms/p/events?watch=e6"); code != 503 {
		t.Errorf("a fifth watched-only room from a room's stream: %d, want 503", code)
	}
	// People still get every room --max-rooms allows.
	for _, room := range []string{"p1", "p2", "p3", "e1"} {
		c := dial(t, s, "/rooms/"+room+"/events")
		c.waitCount(t, 1)
	}
	if n := metric(t, s, "presence_watched_rooms"); n != 3 {
		t.Errorf("%v watched rooms once e1 has people, want 3", n)
	}
	w1.Close()
	w2.Close()
	waitUntil(t, 5*time.Second, "the watched-only rooms released", func() bool { return metric(t, s, "presence_watched_rooms") == 0 })
	if n := metric(t, s, "presence_rooms"); n != 4 {
		t.Errorf("%v rooms of people, want 4", n)
	}
	w3 := dial(t, s, "/watch?rooms=e5,e6,e7,e8")
	firstPresence(t, w3, "e5:0/0", "e6:0/0", "e7:0/0", "e8:0/0")
}

// Watching works the same over HTTP/2, where a browser's page and its
// other streams share one connection.
func TestWatchOverBothProtocols(t *testing.T) {
	t.Parallel()
	forEachProto(t, func(t *testing.T, proto string) {
		p := startProto(t, proto, "--heartbeat", "300ms")
		w := p.open(t, "/watch?rooms=a,b")
		firstPresence(t, w, "a:0/0", "b:0/0")
		p.open(t, "/rooms/a/events")
		waitRoomPresence(t, w, "a", 1, 1)
		c := p.open(t, "/rooms/b/events?watch=a")
		firstPresence(t, c, "b:1/1", "a:1/1")
		waitRoomPresence(t, w, "b", 1, 1)
		w.waitFor(t, 5*time.Second, "a heartbeat", func() bool { return heartbeats(w) > 0 })
	})
}
