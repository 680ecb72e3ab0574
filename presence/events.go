package presence

import (
	"encoding/json"
	"strings"
)

// Events is the JSON data of a room's events, as clients read them: built
// with encoding/json once per publish (or per join), and shared read-only
// by every stream that writes it. Which event each goes in, and how events
// are framed, is the transport's business.
type Events struct {
	// Count is the room's people: a JSON number.
	Count []byte
	// Presence is {"room":...,"people":N,"connections":M}; in a Joined of a
	// stream that follows members, with "members" and "truncated" too.
	Presence []byte
	// While the room's members are tracked (Update.Tracked): Members is the
	// presence data with "members" and "truncated", for a stream that must
	// be told everyone again; Joined and Left hold one
	// {"room":...,"id":...,"name":...} per member who arrived or left.
	Members      []byte
	Joined, Left [][]byte
}

// presenceData is the data of a presence event.
type presenceData struct {
	Room        string        `json:"room"`
	People      int           `json:"people"`
	Connections int           `json:"connections"`
	Members     *[]memberData `json:"members,omitempty"` // set, if only to an empty list, when members are listed
	Truncated   *bool         `json:"truncated,omitempty"`
}

// memberData is a member as clients see it: the user id without the hub's
// "u:" prefix, and the name if any.
type memberData struct {
	ID   string `json:"id"`
	Name string `json:"name,omitempty"`
}

func newMemberData(m MemberInfo) memberData {
	return memberData{ID: strings.TrimPrefix(m.ID, "u:"), Name: m.Name}
}

// mustJSON marshals v, which holds only strings, numbers and booleans:
// encoding/json cannot fail on it.
func mustJSON(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}

// presenceJSON is a presence event's data; with list, the members too.
func presenceJSON(room string, c Counts, list bool, members []MemberInfo, truncated bool) []byte {
	d := presenceData{Room: room, People: c.People, Connections: c.Connections}
	if list {
		ms := make([]memberData, len(members))
		for i, m := range members {
			ms[i] = newMemberData(m)
		}
		d.Members, d.Truncated = &ms, &truncated
	}
	return mustJSON(d)
}

// memberEvent is the data of a join or leave event: the member, and the
// room, so that a stream that also watches other rooms (Watch) can tell
// them apart; a room's own streams get the same data.
type memberEvent struct {
	Room string `json:"room"`
	memberData
}

// membersJSON is the data of one join or leave event per member of room.
func membersJSON(room string, ms []MemberInfo) [][]byte {
	out := make([][]byte, len(ms))
	for i, m := range ms {
		out[i] = mustJSON(memberEvent{Room: room, memberData: newMemberData(m)})
	}
	return out
}

// newEvents builds the events of u, a publish of room.
func newEvents(room string, u *Update) Events {
	e := Events{Count: mustJSON(u.Counts.People), Presence: presenceJSON(room, u.Counts, false, nil, false)}
	if u.Tracked {
		e.Members = presenceJSON(room, u.Counts, true, u.Members, u.Truncated)
		e.Joined, e.Left = membersJSON(room, u.Joined), membersJSON(room, u.Left)
	}
	return e
}
