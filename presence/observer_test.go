package presence

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// observed records what an Observer is told, as "+room id" and "-room id".
type observed struct {
	mu    sync.Mutex
	calls []string
}

func (o *observed) Observe(room string, m Member, arrived bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	sign := "-"
	if arrived {
		sign = "+"
	}
	o.calls = append(o.calls, fmt.Sprintf("%s%s %s", sign, room, m.ID))
}

func (o *observed) take() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	c := o.calls
	o.calls = nil
	return c
}

// The observer is told what the backend is: arrivals, and leaves after the
// grace; a refresh within the grace, nothing; the end of the grace by the
// hub's close or by a room taking an idle one's place, the leaves.
func TestObserverFollowsTheBackend(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const grace = 3 * time.Second
		obs := &observed{}
		h, _ := newHub(t, HubOptions{Grace: grace, Observer: obs, MaxRooms: 2})
		ann := Member{ID: "u:ann", Signed: true}
		a, _, _ := h.JoinAs("r", ann, JoinOptions{})
		anon, _, _ := h.Join("r")
		if got := obs.take(); !slices.Equal(got, []string{"+r u:ann", "+r "}) {
			t.Fatalf("joins: %v", got)
		}
		time.Sleep(grace)
		a.Leave()
		anon.Leave()                                  // anonymous: at once
		a2, _, _ := h.JoinAs("r", ann, JoinOptions{}) // a refresh: nothing
		if got := obs.take(); !slices.Equal(got, []string{"-r "}) {
			t.Fatalf("a refresh and an anonymous leave: %v", got)
		}
		time.Sleep(grace)
		a2.Leave()
		time.Sleep(grace - time.Millisecond)
		synctest.Wait()
		if got := obs.take(); len(got) != 0 {
			t.Fatalf("told before the grace ended: %v", got)
		}
		time.Sleep(time.Millisecond)
		synctest.Wait()
		if got := obs.take(); !slices.Equal(got, []string{"-r u:ann"}) {
			t.Fatalf("after the grace: %v", got)
		}

		// Rooms of people in their grace give way to a new room, and the
		// hub's close ends every grace: both are leaves.
		bo := Member{ID: "u:bo", Signed: true}
		for _, room := range []string{"x", "y"} {
			s, _, _ := h.JoinAs(room, bo, JoinOptions{})
			time.Sleep(grace)
			s.Leave()
		}
		z, _, _ := h.Join("z") // x gives way
		if got := obs.take(); !slices.Equal(got, []string{"+x u:bo", "+y u:bo", "-x u:bo", "+z "}) {
			t.Fatalf("a room giving way: %v", got)
		}
		h.Close()
		z.Leave()
		if got := obs.take(); !slices.Equal(got, []string{"-y u:bo", "-z "}) {
			t.Fatalf("the hub closing: %v", got)
		}
	})
}
