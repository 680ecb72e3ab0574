package webhook

import "github.com/presence/presence/presence"

// Event is one thing a webhook tells, as the JSON body lists it.
type Event struct {
	// Name is room_occupied, room_vacated, member_joined or member_left.
	Name string `json:"name"`
	Room string `json:"room"`
	// The signed-in member, for member events: their user id (the token's
	// subject) and display name.
	UserID   string `json:"user_id,omitempty"`
	UserName string `json:"user_name,omitempty"`
	// Seq numbers the events told: it increases from one event to the
	// next of a node, and with Redis across the cluster, in the order they
	// are delivered, so that a receiver can drop one it has already (a
	// sender that died after telling and before it knew has its batch
	// told again by the next).
	Seq uint64 `json:"seq"`
}

// told is a transition to tell, numbered.
type told struct {
	t   presence.Transition
	seq uint64
}

// queue holds what waits for delivery, oldest first, at most limit of
// them: a new one past the bound pushes out the oldest. Each has a place,
// first for the oldest, so that a batch can be named by its range. Only
// the owner goroutine touches it.
type queue struct {
	items []told
	first uint64
	limit int
}

// push adds it and reports how many old ones it pushed out (0 or 1).
func (q *queue) push(it told) int {
	dropped := 0
	if len(q.items) >= q.limit {
		q.items[0] = told{} // let the strings go
		q.items = q.items[1:]
		q.first++
		dropped = 1
	}
	q.items = append(q.items, it)
	return dropped
}

// discard removes the oldest n, delivered.
func (q *queue) discard(n int) {
	n = min(n, len(q.items))
	clear(q.items[:n])
	q.items = q.items[n:]
	q.first += uint64(n)
	if len(q.items) == 0 {
		q.items = nil // give back the array
	}
}
