package presence

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// ender counts the calls of a stream's End func.
type ender struct{ calls atomic.Int32 }

func (e *ender) end()     { e.calls.Add(1) }
func (e *ender) n() int32 { return e.calls.Load() }

func alice() Member { return Member{ID: "u:alice", Name: "Alice", Signed: true} }

// A user's disconnect ends each of their streams and watches once, and
// nobody else's; a second one finds them ended already; once they have
// left, the hub keeps nothing of them.
func TestDisconnectUserEndsTheirStreamsOnce(t *testing.T) {
	h, _ := newHub(t, HubOptions{})
	var a1, a2, aw, b1, v1 ender
	sa1, _, err := h.JoinAs("r1", alice(), JoinOptions{End: a1.end})
	if err != nil {
		t.Fatal(err)
	}
	sa2, _, _ := h.JoinAs("r2", alice(), JoinOptions{End: a2.end})
	wa, _, err := h.Watch([]string{"r3"}, WatchOptions{Alone: true, User: "u:alice", End: aw.end})
	if err != nil {
		t.Fatal(err)
	}
	sb, _, _ := h.JoinAs("r1", Member{ID: "u:bob", Signed: true}, JoinOptions{End: b1.end})
	sv, _, _ := h.JoinAs("r1", Member{ID: "v:x"}, JoinOptions{End: v1.end})

	got, err := h.Disconnect(context.Background(), Disconnect{User: "u:alice"})
	if err != nil || got.Streams != 3 || got.Told {
		t.Fatalf("Disconnect = %+v, %v; want 3 streams, none told (memory)", got, err)
	}
	if a1.n() != 1 || a2.n() != 1 || aw.n() != 1 || b1.n() != 0 || v1.n() != 0 {
		t.Fatalf("End calls alice %d %d %d, bob %d, visitor %d; want 1 1 1 0 0", a1.n(), a2.n(), aw.n(), b1.n(), v1.n())
	}
	if n := h.Disconnected(Disconnect{User: "u:alice"}); n != 0 || a1.n() != 1 {
		t.Fatalf("a second disconnect ended %d (End calls %d): streams ended already must not be ended again", n, a1.n())
	}
	sa1.Leave()
	sa2.Leave()
	wa.Close()
	h.mu.Lock()
	users, ends := len(h.users), h.rooms["r1"].ends
	h.mu.Unlock()
	if users != 1 || ends == nil || ends.roomNext == nil || ends.roomNext.roomNext != nil {
		t.Fatalf("after alice left: %d users tracked (want bob only), room r1's list %v (want bob and the visitor)", users, ends)
	}
	sb.Leave()
	sv.Leave()
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.users) != 0 || len(h.rooms) != 0 {
		t.Fatalf("after everyone left: users %v, rooms %v; want none", h.users, h.rooms)
	}
}

// A room's disconnect ends every stream of that room, signed in or not,
// and neither those of other rooms nor the watches that follow it.
func TestDisconnectRoom(t *testing.T) {
	h, _ := newHub(t, HubOptions{})
	var in [3]ender
	var other, watcher ender
	for i := range in {
		st, _, _ := h.JoinAs("r", Member{ID: fmt.Sprintf("v:%d", i)}, JoinOptions{End: in[i].end})
		defer st.Leave()
	}
	st, _, _ := h.JoinAs("q", alice(), JoinOptions{End: other.end})
	defer st.Leave()
	w, _, _ := h.Watch([]string{"r"}, WatchOptions{Alone: true, User: "u:alice", End: watcher.end})
	defer w.Close()
	got, err := h.Disconnect(context.Background(), Disconnect{Room: "r"})
	if err != nil || got.Streams != 3 {
		t.Fatalf("Disconnect = %+v, %v; want 3", got, err)
	}
	for i := range in {
		if in[i].n() != 1 {
			t.Errorf("stream %d of r: %d End calls, want 1", i, in[i].n())
		}
	}
	if other.n() != 0 || watcher.n() != 0 {
		t.Errorf("End calls of another room's stream %d, of r's watcher %d; want 0", other.n(), watcher.n())
	}
}

// A disconnected person leaves at once: no grace keeps them counted, as it
// would after a stream that closed on its own.
func TestDisconnectedLeaveWithoutGrace(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, _ := newHub(t, HubOptions{Grace: time.Second})
		var e ender
		st, _, _ := h.JoinAs("r", alice(), JoinOptions{End: e.end})
		bob, _, _ := h.JoinAs("r", Member{ID: "u:bob", Signed: true}, JoinOptions{})
		time.Sleep(2 * time.Second) // both earned a grace
		h.Disconnected(Disconnect{User: "u:alice"})
		st.Leave()
		bob.Leave()
		h.mu.Lock()
		inGrace := h.graceOf["u:bob"]
		h.mu.Unlock()
		if c := h.backend.Count("r"); c.People != 1 || inGrace != 1 {
			t.Fatalf("people right after both left: %d, bob's streams in their grace %d; want 1 (bob in his grace, alice gone)", c.People, inGrace)
		}
		time.Sleep(time.Second)
		synctest.Wait()
		h.mu.Lock()
		defer h.mu.Unlock()
		if len(h.graceOf) != 0 || len(h.rooms) != 0 {
			t.Fatalf("after the grace: in their grace %v, rooms %d; want none", h.graceOf, len(h.rooms))
		}
	})
}

// A disconnect also ends the grace of the streams that closed before it:
// of the user, in every room, or of everyone in the room.
func TestDisconnectEndsTheGraceOfClosedStreams(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, _ := newHub(t, HubOptions{Grace: time.Second})
		var closed []*Stream
		for _, j := range []struct {
			room string
			m    Member
		}{{"r", alice()}, {"q", alice()}, {"q", Member{ID: "v:x"}}, {"q", Member{ID: "v:y"}}, {"p", Member{ID: "v:z"}}} {
			st, _, _ := h.JoinAs(j.room, j.m, JoinOptions{})
			closed = append(closed, st)
		}
		time.Sleep(2 * time.Second) // all earned a grace
		for _, st := range closed {
			st.Leave()
		}
		people := func(room string) int { return h.backend.Count(room).People }
		if people("r") != 1 || people("q") != 3 || people("p") != 1 {
			t.Fatalf("people in their grace: r %d, q %d, p %d; want 1 3 1", people("r"), people("q"), people("p"))
		}
		h.Disconnected(Disconnect{User: "u:alice"})
		if people("r") != 0 || people("q") != 2 || people("p") != 1 {
			t.Fatalf("after alice's disconnect: r %d, q %d, p %d; want 0 2 1", people("r"), people("q"), people("p"))
		}
		h.Disconnected(Disconnect{Room: "q"})
		if people("q") != 0 || people("p") != 1 {
			t.Fatalf("after q's disconnect: q %d, p %d; want 0 1", people("q"), people("p"))
		}
		h.mu.Lock()
		defer h.mu.Unlock()
		if h.ghosts != 1 || len(h.rooms) != 1 || h.idle.Len() != 1 || len(h.graceOf) != 0 {
			t.Fatalf("ghosts %d, rooms %d, idle %d, signed-in people in their grace %v; want p's visitor alone", h.ghosts, len(h.rooms), h.idle.Len(), h.graceOf)
		}
	})
}

// A block refuses the user's streams and watches for its length, on this
// node, and nobody else's; then they are taken again.
func TestBlock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, _ := newHub(t, HubOptions{})
		if _, err := h.Disconnect(context.Background(), Disconnect{User: "u:alice", Block: time.Minute}); err != nil {
			t.Fatal(err)
		}
		if _, _, err := h.JoinAs("r", alice(), JoinOptions{}); !errors.Is(err, ErrBlocked) {
			t.Fatalf("a blocked user's join: %v, want ErrBlocked", err)
		}
		if _, _, err := h.Watch([]string{"r"}, WatchOptions{Alone: true, User: "u:alice"}); !errors.Is(err, ErrBlocked) {
			t.Fatalf("a blocked user's watch: %v, want ErrBlocked", err)
		}
		st, _, err := h.JoinAs("r", Member{ID: "u:bob", Signed: true}, JoinOptions{})
		if err != nil {
			t.Fatalf("another user's join: %v", err)
		}
		st.Leave()
		time.Sleep(time.Minute)
		st, _, err = h.JoinAs("r", alice(), JoinOptions{})
		if err != nil {
			t.Fatalf("the join after the block: %v", err)
		}
		st.Leave()
		if len(h.blocked) != 0 {
			t.Fatalf("a block over is still kept: %v", h.blocked)
		}
	})
}

// Blocks are bounded: past MaxBlocked users blocked at once a new block is
// refused (the streams are ended all the same), and blocks over make room.
func TestBlockBound(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, _ := newHub(t, HubOptions{})
		for i := range MaxBlocked {
			h.Disconnected(Disconnect{User: fmt.Sprintf("u:%d", i), Block: time.Second})
		}
		var e ender
		st, _, _ := h.JoinAs("r", alice(), JoinOptions{End: e.end})
		defer st.Leave()
		got, err := h.Disconnect(context.Background(), Disconnect{User: "u:alice", Block: time.Minute})
		if !errors.Is(err, ErrBlockLimit) || got.Streams != 1 || e.n() != 1 {
			t.Fatalf("a block past the bound: %+v, %v, End calls %d; want ErrBlockLimit and the stream ended", got, err, e.n())
		}
		time.Sleep(time.Second)
		if _, err := h.Disconnect(context.Background(), Disconnect{User: "u:alice", Block: time.Minute}); err != nil {
			t.Fatalf("a block once the others are over: %v", err)
		}
		if len(h.blocked) != 1 {
			t.Fatalf("%d blocks kept, want 1", len(h.blocked))
		}
	})
}

func TestDisconnectRefusesNonsense(t *testing.T) {
	h, _ := newHub(t, HubOptions{})
	for _, d := range []Disconnect{{}, {User: "u:a", Room: "r"}, {Room: "r", Block: time.Second}, {User: "u:a", Block: -1}, {User: "u:a", Block: MaxBlock + 1}, {Room: "a b"}} {
		if _, err := h.Disconnect(context.Background(), d); !errors.Is(err, ErrInvalidDisconnect) {
			t.Errorf("Disconnect(%+v) = %v, want ErrInvalidDisconnect", d, err)
		}
	}
}

// Members pages through the signed-in members by ID, with their
// connections; visitors count in people only.
func TestMembersPages(t *testing.T) {
	h, _ := newHub(t, HubOptions{})
	for _, m := range []Member{{ID: "u:c", Name: "C", Signed: true}, {ID: "u:a", Signed: true}, {ID: "u:b", Signed: true}, {ID: "u:a", Signed: true}, {ID: "v:x"}} {
		st, _, _ := h.JoinAs("r", m, JoinOptions{})
		defer st.Leave()
	}
	page, people, more := h.Members("r", "", 2)
	if len(page) != 2 || page[0] != (MemberCount{ID: "u:a", Connections: 2}) || page[1].ID != "u:b" || people != 4 || !more {
		t.Fatalf("first page %+v, people %d, more %v; want a (2) and b of 4 people, more", page, people, more)
	}
	page, _, more = h.Members("r", "u:b", 2)
	if len(page) != 1 || page[0] != (MemberCount{ID: "u:c", Name: "C", Connections: 1}) || more {
		t.Fatalf("second page %+v, more %v; want c alone, the last", page, more)
	}
	if page, people, more := h.Members("nobody", "", 2); len(page) != 0 || people != 0 || more {
		t.Fatalf("an empty room: %+v %d %v", page, people, more)
	}
}
