package handlers

import (
	"net/http"
	"strconv"

	"github.com/presence/presence/presence"
)

// MaxRoomsLimit is the most rooms one GET /api/rooms may ask for.
const MaxRoomsLimit = 1000

// handleRoom serves GET /api/rooms/{room}: {"room":"lobby","count":3}, with
// per-node shares ("nodes") and "degraded" when counts are shared. A
// private room is shown only to a token that opens it (401 without one,
// 403 with one that does not), as its streams are: its name, people and
// connections are no one else's business. A token may come as
// Authorization: Bearer, ?token= or the token cookie; a bad one gets 401,
// whatever the room. A Bearer that is the API key is the server, which
// sees every room.
func handleRoom(hub *presence.Hub, ident IdentityOptions, key apiKey) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		room, ok := roomParam(w, r)
		if !ok {
			return
		}
		if !key.server(r) && !mayRead(w, r, ident, room) {
			return
		}
		writeJSON(w, http.StatusOK, hub.Room(room))
	}
}

// mayRead reports whether the request's token, if any, may read room; if
// not, it answers 401 or 403.
func mayRead(w http.ResponseWriter, r *http.Request, ident IdentityOptions, room string) bool {
	claims, signed, ok := requestClaims(w, r, ident)
	switch {
	case !ok:
		return false
	case !ident.private(room):
	case !signed:
		w.Header().Set("WWW-Authenticate", "Bearer")
		writeError(w, http.StatusUnauthorized, "room "+room+" is private: it needs a token ("+tokenCarriers+")")
		return false
	case !claims.Allows(room):
		writeError(w, http.StatusForbidden, "this token does not open room "+room)
		return false
	}
	return true
}

// roomList is the answer of GET /api/rooms.
type roomList struct {
	Rooms     []presence.RoomCount `json:"rooms"`
	Total     int                  `json:"total"`     // non-empty rooms in all
	Truncated bool                 `json:"truncated"` // more rooms than listed
	Degraded  bool                 `json:"degraded,omitempty"`
}

// handleRooms serves GET /api/rooms?limit=N: the non-empty rooms, sorted by
// name, at most limit of them (defaultLimit if not given). Private rooms
// are left out, unless the request's token opens them: they are filtered
// inside the listing, so that neither the total nor truncated gives them
// away. A Bearer that is the API key is the server, which sees them all.
func handleRooms(hub *presence.Hub, defaultLimit int, ident IdentityOptions, key apiKey) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		limit := defaultLimit
		if s := r.URL.Query().Get("limit"); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n < 1 || n > MaxRoomsLimit {
				writeError(w, http.StatusBadRequest, "limit must be an integer from 1 to "+strconv.Itoa(MaxRoomsLimit))
				return
			}
			limit = n
		}
		var keep func(string) bool // nil: every room, when none is private or for the server
		if key.server(r) {
			rooms, total := hub.Rooms(limit, nil)
			writeJSON(w, http.StatusOK, roomList{Rooms: rooms, Total: total, Truncated: total > len(rooms), Degraded: hub.Health() != nil})
			return
		}
		claims, signed, ok := requestClaims(w, r, ident)
		if !ok {
			return
		}
		if len(ident.Private) > 0 {
			keep = func(room string) bool {
				return !ident.private(room) || signed && claims.Allows(room)
			}
		}
		rooms, total := hub.Rooms(limit, keep)
		writeJSON(w, http.StatusOK, roomList{Rooms: rooms, Total: total, Truncated: total > len(rooms), Degraded: hub.Health() != nil})
	}
}
