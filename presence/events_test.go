package presence

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// A stream that follows members gets them on join, then who joined and
// left, coalesced: someone who comes and goes within one window is never
// mentioned.
func TestMemberEvents(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, rec := newHub(t, HubOptions{MembersCap: 2})
		alice := Member{ID: "u:alice", Name: "Alice", Signed: true}
		a, _, _ := h.JoinAs("r", alice, JoinOptions{})
		anon, _, _ := h.Join("r")
		w, j, _ := h.JoinAs("r", Member{ID: "u:wat", Name: "W", Signed: true}, JoinOptions{Members: true})
		if len(j.Members) != 2 || j.Members[0] != (MemberInfo{"u:alice", "Alice"}) || j.Members[1].ID != "u:wat" {
			t.Errorf("members on join: %+v, want alice and the watcher", j.Members)
		}
		time.Sleep(time.Second)
		synctest.Wait()
		p := rec.published()
		last := p[len(p)-1].u
		if !last.Tracked || len(last.Joined)+len(last.Left) != 0 || len(last.Members) != 2 || last.Seq != j.Seq+1 {
			t.Fatalf("publish after the watcher joined: %+v", last)
		}
		n := len(p)

		// Bob joins and Carol comes and goes within one window.
		bob, _, _ := h.JoinAs("r", Member{ID: "u:bob", Name: "Bob", Signed: true}, JoinOptions{})
		synctest.Wait() // published at once: quiet room
		carol, _, _ := h.JoinAs("r", Member{ID: "u:carol", Signed: true}, JoinOptions{})
		carol.Leave()
		time.Sleep(time.Second)
		synctest.Wait()
		p = publishesSince(rec, n)
		var joined, left []string
		for _, x := range p {
			for _, m := range x.u.Joined {
				joined = append(joined, m.ID)
			}
			for _, m := range x.u.Left {
				left = append(left, m.ID)
			}
		}
		if strings.Join(joined, ",") != "u:bob" || len(left) != 0 {
			t.Errorf("joined %v, left %v; want bob joined, nothing about carol", joined, left)
		}
		if l := p[len(p)-1].u; len(l.Members) != 2 || !l.Truncated {
			t.Errorf("members capped at 2: %+v", l)
		}
		n = len(rec.published())
		bob.Leave()
		synctest.Wait()
		p = publishesSince(rec, n)
		if len(p) != 1 || len(p[0].u.Left) != 1 || p[0].u.Left[0] != (MemberInfo{"u:bob", "Bob"}) {
			t.Errorf("bob leaving: %+v", p)
		}
		for _, s := range []*Stream{a, anon, w} {
			s.Leave()
		}
		<-h.Close()
	})
}

// Event data is JSON that decodes to what it says. Room names need no
// escaping (ValidateRoom allows only A-Z a-z 0-9 . _ -, none of which JSON
// escapes), so the names tried are the widest the rule allows; member names
// and ids are free text and are escaped.
func TestEventsAreJSON(t *testing.T) {
	room := "A-z_0.9" + strings.Repeat("x", MaxRoomLen-7)
	if err := ValidateRoom(room); err != nil {
		t.Fatal(err)
	}
	u := &Update{Seq: 3, Counts: Counts{People: 2, Connections: 5}, Tracked: true,
		Members: []MemberInfo{{ID: "u:a\"b", Name: "<Zoë>\n\u2028"}}, Truncated: true,
		Joined: []MemberInfo{{ID: "u:j"}}, Left: []MemberInfo{{ID: "v:l", Name: "L"}}}
	e := newEvents(room, u)
	if string(e.Count) != "2" {
		t.Errorf("count %s", e.Count)
	}
	if want := `{"room":"` + room + `","people":2,"connections":5}`; string(e.Presence) != want {
		t.Errorf("presence %s, want %s", e.Presence, want)
	}
	var all struct {
		Room        string
		People      int
		Connections int
		Members     []struct{ ID, Name string }
		Truncated   bool
	}
	if err := json.Unmarshal(e.Members, &all); err != nil || all.Room != room || all.People != 2 || all.Connections != 5 || !all.Truncated ||
		len(all.Members) != 1 || all.Members[0].ID != `a"b` || all.Members[0].Name != "<Zoë>\n\u2028" {
		t.Errorf("members %s: %+v %v", e.Members, all, err)
	}
	for _, b := range [][]byte{e.Count, e.Presence, e.Members, e.Joined[0], e.Left[0]} {
		if bytes.ContainsAny(b, "\r\n") {
			t.Errorf("%q spans lines", b)
		}
	}
	if string(e.Joined[0]) != `{"room":"`+room+`","id":"j"}` || string(e.Left[0]) != `{"room":"`+room+`","id":"v:l","name":"L"}` {
		t.Errorf("joined %s, left %s", e.Joined[0], e.Left[0])
	}
	// Listed members, even none, are a list.
	if got := string(presenceJSON("r", Counts{}, true, nil, false)); got != `{"room":"r","people":0,"connections":0,"members":[],"truncated":false}` {
		t.Errorf("no members: %s", got)
	}
}
