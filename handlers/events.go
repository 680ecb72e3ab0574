package handlers

import (
	"strconv"

	"github.com/presence/presence/presence"
)

// The events of a stream (see the README's protocol). Their data is JSON
// that presence builds once per publish; here they are framed as
// text/event-stream.
const (
	eventCount    = "user count" // the people, a number
	eventPresence = "presence"   // room, people and connections; members for signed-in streams
	eventJoin     = "join"       // a signed-in member arrived
	eventLeave    = "leave"      // a signed-in member left
	eventExpiring = "token-expiring"
)

// heartbeatLine is the comment line of a heartbeat.
var heartbeatLine = []byte(": hb\n\n")

// appendEvent appends one event named name with data, which is one line.
func appendEvent(b []byte, name string, data []byte) []byte {
	b = append(b, "event: "...)
	b = append(b, name...)
	b = append(b, "\ndata: "...)
	b = append(b, data...)
	return append(b, "\n\n"...)
}

// appendCounts appends u's count and presence events, with u's Seq as
// their id.
func appendCounts(b []byte, u *presence.Update) []byte {
	b = append(b, "id: "...)
	b = strconv.AppendUint(b, u.Seq, 10)
	b = append(b, '\n')
	b = appendEvent(b, eventCount, u.Events.Count)
	return appendEvent(b, eventPresence, u.Events.Presence)
}

// appendMemberEvents appends a join event per member who arrived and a
// leave event per member who left in u.
func appendMemberEvents(b []byte, u *presence.Update) []byte {
	for _, data := range u.Events.Joined {
		b = appendEvent(b, eventJoin, data)
	}
	for _, data := range u.Events.Left {
		b = appendEvent(b, eventLeave, data)
	}
	return b
}
