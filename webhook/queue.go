package webhook

// Event is one thing a webhook tells, as the JSON body lists it.
type Event struct {
	// Name is room_occupied, room_vacated, member_joined or member_left.
	Name string `json:"name"`
	Room string `json:"room"`
	// The signed-in member, for member events: their user id (the token's
	// subject) and display name.
	UserID   string `json:"user_id,omitempty"`
	UserName string `json:"user_name,omitempty"`
	// Seq orders the events told: it increases from one event to the next
	// of a node, and with Redis across the cluster, so that a receiver
	// can put the events of a room told by different nodes in order, and
	// drop one it has already.
	Seq uint64 `json:"seq"`
}

// queue holds the events waiting for delivery, oldest first, at most limit
// of them: a new event past the bound pushes out the oldest. Each event
// has a sequence number, first for the oldest, so that a batch can be
// named by its range. Only the owner goroutine touches it.
type queue struct {
	events []Event
	first  uint64
	limit  int
}

// push adds e and reports how many old events it pushed out (0 or 1).
func (q *queue) push(e Event) int {
	dropped := 0
	if len(q.events) >= q.limit {
		q.events[0] = Event{} // let the strings go
		q.events = q.events[1:]
		q.first++
		dropped = 1
	}
	q.events = append(q.events, e)
	return dropped
}

// discard removes the oldest n events, delivered.
func (q *queue) discard(n int) {
	n = min(n, len(q.events))
	clear(q.events[:n])
	q.events = q.events[n:]
	q.first += uint64(n)
	if len(q.events) == 0 {
		q.events = nil // give back the array
	}
}
