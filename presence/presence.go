// Package presence keeps who is where: rooms, their counts, and when to tell
// the streams about a change. It knows nothing of HTTP or of the wire format;
// the transport registers a Notifier and opens one Stream per client.
package presence

import (
	"errors"
	"fmt"
)

// Errors returned by Hub.Join. The transport maps them to answers.
var (
	// ErrInvalidRoom means the room name breaks the naming rule.
	ErrInvalidRoom = errors.New("invalid room name")
	// ErrStreamLimit means this node holds as many streams as it may.
	ErrStreamLimit = errors.New("too many open streams")
	// ErrRoomLimit means this node holds as many rooms as it may.
	ErrRoomLimit = errors.New("too many rooms")
	// ErrClosed means the hub is shutting down and takes no new streams.
	ErrClosed = errors.New("shutting down")
)

// DefaultRoom is the room of clients that name none.
const DefaultRoom = "lobby"

// MaxRoomLen is the longest room name allowed.
const MaxRoomLen = 64

// RoomRule says in words which room names are allowed, for error messages.
const RoomRule = "room names are 1 to 64 characters from A-Z a-z 0-9 . _ -"

// ValidateRoom reports whether name is an allowed room name. Names are kept
// short and plain so that they are safe in URLs, logs, metrics and keys of a
// shared store without escaping.
func ValidateRoom(name string) error {
	if len(name) == 0 || len(name) > MaxRoomLen {
		return fmt.Errorf("%w: %s", ErrInvalidRoom, RoomRule)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '.', c == '_', c == '-':
		default:
			return fmt.Errorf("%w: %s", ErrInvalidRoom, RoomRule)
		}
	}
	return nil
}

// Member is one participant of a room. Today every stream is its own member;
// the ID is there so that people (a user or a visitor with several tabs) can
// be told apart later without changing the shape of the API.
type Member struct {
	// ID identifies the member within its room; unique per stream for now.
	ID string
}

// RoomCount is a room and how many are in it.
type RoomCount struct {
	Room  string `json:"room"`
	Count int    `json:"count"`
}

// Backend is where a room's count comes from. Memory serves one node; a
// shared store lets several nodes add up to one count. The Hub calls it with
// its own lock held, so implementations must not call back into the Hub.
type Backend interface {
	// Join adds m to room and returns the room's count after it.
	Join(room string, m Member) (int, error)
	// Leave removes m from room and returns the room's count after it.
	Leave(room string, m Member) int
	// Count returns the room's count; 0 for a room nobody is in.
	Count(room string) int
	// Rooms returns up to limit non-empty rooms, sorted by name, and how
	// many non-empty rooms there are in all.
	Rooms(limit int) ([]RoomCount, int)
}

// Shared is implemented by a Backend whose counts add up the shares of
// several nodes. The Hub uses it to say how a count is made up and whether
// the shared view is complete.
type Shared interface {
	// Shares returns the room's count per node, by node id.
	Shares(room string) map[string]int
	// Health is nil while the view of the other nodes is current, and says
	// otherwise why counts may be stale (this node's own share is always
	// exact).
	Health() error
}

// RoomInfo is a room's count and, with a shared backend, how it is made up.
type RoomInfo struct {
	Room  string         `json:"room"`
	Count int            `json:"count"`
	Nodes map[string]int `json:"nodes,omitempty"` // per-node shares
	// Degraded is set when the shared view is not current (see
	// Shared.Health): the count is the last one known.
	Degraded bool `json:"degraded,omitempty"`
}

// Notifier is told what the streams need to know. Implemented by the
// transport.
type Notifier interface {
	// RoomOpened is called, with the hub's lock held, before the first
	// stream of a room joins. It returns where the room's counts go until
	// RoomClosed: a room closed and opened again under the same name gets a
	// new Publisher, so that a late publish to the old one reaches no one.
	RoomOpened(room string) Publisher
	// RoomClosed is called, with the hub's lock held, after the last stream
	// of a room left; p is what RoomOpened returned for it.
	RoomClosed(room string, p Publisher)
}

// Publisher sends one room's counts to its streams.
type Publisher interface {
	// Publish sends count to every stream of the room. Calls never
	// overlap and come at most once per window. seq increases with every
	// publish of the room; streams report it back through Stream.Delivered.
	Publish(count int, seq uint64)
}
