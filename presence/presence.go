// Package presence keeps who is where: rooms, their counts, and when to tell
// the streams about a change. It knows nothing of HTTP: the transport opens
// one Stream per client, and each room hands out its latest Update, which
// the next one replaces (see Update).
package presence

import (
	"errors"
	"fmt"
	"strings"
)

// Errors returned by Hub.Join. The transport maps them to answers.
var (
	// ErrInvalidRoom means the room name breaks the naming rule.
	ErrInvalidRoom = errors.New("invalid room name")
	// ErrStreamLimit means this node holds as many streams as it may.
	ErrStreamLimit = errors.New("too many open streams")
	// ErrRoomLimit means this node holds as many rooms as it may.
	ErrRoomLimit = errors.New("too many rooms")
	// ErrSourceLimit means the stream's source holds as many streams, open
	// and in their grace, as HubOptions.MaxPerSource allows.
	ErrSourceLimit = errors.New("too many streams from one source")
	// ErrWatchSourceLimit means a watch would bring more rooms into
	// existence than its source may hold (HubOptions.MaxWatchRoomsPerSource).
	ErrWatchSourceLimit = errors.New("too many watched rooms from one source")
	// ErrClosed means the hub is shutting down and takes no new streams.
	ErrClosed = errors.New("shutting down")
	// ErrBlocked means the stream's user is blocked for now (a Disconnect
	// with a Block).
	ErrBlocked = errors.New("user blocked for now")
)

// Errors returned by Hub.Disconnect.
var (
	// ErrInvalidDisconnect means the Disconnect names nothing, or names it
	// wrong.
	ErrInvalidDisconnect = errors.New("invalid disconnect")
	// ErrBlockLimit means MaxBlocked users are blocked already.
	ErrBlockLimit = errors.New("too many users blocked")
	// ErrNotTold means the other nodes could not be told of a Disconnect.
	ErrNotTold = errors.New("other nodes not told")
)

// DefaultRoom is the room of clients that name none.
const DefaultRoom = "lobby"

// MaxRoomLen is the longest room name allowed.
const MaxRoomLen = 64

// RoomRule says in words which room names are allowed, for error messages.
const RoomRule = "room names are 1 to 64 characters from A-Z a-z 0-9 . _ -, and not only dots"

// ValidateRoom reports whether name is an allowed room name. Names are kept
// short and plain so that they are safe in URLs, logs, metrics and keys of a
// shared store without escaping.
//
// A name made only of dots is refused: "." and ".." are path segments that
// browsers, URL libraries and proxies resolve away (/rooms/../events reaches
// /events, the lobby), so such a room could not be reached by its own URL,
// and "..." and longer are refused with them so that the rule is one plain
// sentence. Other names with dots, leading or trailing ("a.", ".a"), keep
// their meaning in a URL path and stay allowed.
func ValidateRoom(name string) error {
	if len(name) == 0 || len(name) > MaxRoomLen || strings.Trim(name, ".") == "" {
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

// Member is one participant of a room: a person, or an anonymous stream.
type Member struct {
	// ID names the person: "u:" and a user id for a signed-in user, "v:"
	// and a visitor id for a browser known by its cookie. Empty for an
	// anonymous stream (a client with no cookie), which is a person of its
	// own.
	ID string
	// Name is a signed-in user's display name, if any.
	Name string
	// Signed is set for signed-in users: they are listed as members.
	Signed bool
}

// Counts are a room's distinct people and its connections (streams).
type Counts struct {
	People      int `json:"people"`
	Connections int `json:"connections"`
}

// MemberInfo is a signed-in member as member lists and events show it.
type MemberInfo struct {
	ID   string `json:"id"`
	Name string `json:"name,omitempty"`
}

// MemberCount is a signed-in member and their connections, on every node.
type MemberCount struct {
	ID          string
	Name        string
	Connections int
}

// RoomCount is a room and how many are in it.
type RoomCount struct {
	Room        string `json:"room"`
	Count       int    `json:"count"` // people
	Connections int    `json:"connections"`
}

// Backend is where a room's counts come from. Memory serves one node; a
// shared store lets several nodes add up to one count. The Hub calls it with
// its own lock held, so implementations must not call back into the Hub.
type Backend interface {
	// Join adds m to room and returns the room's counts after it.
	Join(room string, m Member) (Counts, error)
	// Leave removes m from room and returns the room's counts after it.
	Leave(room string, m Member) Counts
	// Count returns the room's counts; zero for a room nobody is in.
	Count(room string) Counts
	// Signed returns the room's signed-in members: name by member ID.
	Signed(room string) map[string]string
	// SignedAfter returns the room's signed-in members whose ID sorts
	// after after ("" for all), with their connections, in no order (see
	// Hub.Members).
	SignedAfter(room, after string) []MemberCount
	// Rooms returns up to limit non-empty rooms, sorted by name, and how
	// many non-empty rooms there are in all. Only rooms keep accepts are
	// listed or counted (all if keep is nil), so that a caller who may not
	// see some rooms learns nothing of them, not even from the total.
	Rooms(limit int, keep func(room string) bool) ([]RoomCount, int)
}

// Shared is implemented by a Backend whose counts add up the shares of
// several nodes. The Hub uses it to say how a count is made up and whether
// the shared view is complete.
type Shared interface {
	// Shares returns the room's connections per node, by node id.
	Shares(room string) map[string]int
	// Health is nil while the view of the other nodes is current, and says
	// otherwise why counts may be stale (this node's own share is always
	// exact).
	Health() error
}

// RoomInfo is a room's count and, with a shared backend, how it is made up.
type RoomInfo struct {
	RoomCount
	Nodes map[string]int `json:"nodes,omitempty"` // connections per node
	// Degraded is set when the shared view is not current (see
	// Shared.Health): the count is the last one known.
	Degraded bool `json:"degraded,omitempty"`
}

// Update is a room's state as of its latest publish, or heartbeat: what
// every stream of the room writes next. The room keeps its latest Update
// and hands it out (Joined.Update); an Update is never changed once handed
// out, and its Replaced channel is closed when a newer one takes its
// place. A stream writes the Update it holds and waits on that channel:
// a slow stream skips stale counts instead of queueing them, and nothing in
// the hub waits for a stream.
type Update struct {
	// Seq increases by one with every publish of the room (0: none yet);
	// streams report it back through Stream.Delivered.
	Seq    uint64
	Counts Counts
	// While a stream of the room follows its members (JoinAs with Members),
	// the signed-in members who arrived and left since the last publish,
	// sorted by ID, and the members now, sorted and capped, for a stream
	// that missed a publish.
	Joined, Left []MemberInfo
	Members      []MemberInfo
	Truncated    bool // Members was capped
	Tracked      bool // the member fields above are filled in
	// Heartbeats counts the Hub.Heartbeat calls that reached the room: a
	// stream that sees it change sends its keep-alive.
	Heartbeats uint64
	// Events is the JSON data of the events this publish makes, built once
	// for all the room's streams.
	Events Events

	replaced chan struct{}
}

// Replaced returns a channel that is closed once a newer Update of the room
// takes this one's place.
func (u *Update) Replaced() <-chan struct{} { return u.replaced }

// Transition is a change in whether a member, or anyone at all, is in a
// room: what webhooks tell, and what a shared store decides once for the
// cluster when several nodes see the same change.
type Transition struct {
	Room string
	// Member is who arrived or left; the zero MemberInfo for the room
	// itself: occupied (Arrived) or vacated.
	Member  MemberInfo
	Arrived bool
}
