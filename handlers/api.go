package handlers

import (
	"net/http"
	"strconv"

	"github.com/go-chi/chi/v5"

	"github.com/presence/presence/presence"
)

// MaxRoomsLimit is the most rooms one GET /api/rooms may ask for.
const MaxRoomsLimit = 1000

// handleRoom serves GET /api/rooms/{room}: {"room":"lobby","count":3}, with
// per-node shares ("nodes") and "degraded" when counts are shared.
func handleRoom(hub *presence.Hub) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		room := chi.URLParam(r, "room")
		if err := presence.ValidateRoom(room); err != nil {
			writeError(w, http.StatusBadRequest, presence.RoomRule)
			return
		}
		writeJSON(w, http.StatusOK, hub.Room(room))
	}
}

// roomList is the answer of GET /api/rooms.
type roomList struct {
	Rooms     []presence.RoomCount `json:"rooms"`
	Total     int                  `json:"total"`     // non-empty rooms in all
	Truncated bool                 `json:"truncated"` // more rooms than listed
	Degraded  bool                 `json:"degraded,omitempty"`
}

// handleRooms serves GET /api/rooms?limit=N: the non-empty rooms, sorted by
// name, at most limit of them (defaultLimit if not given).
func handleRooms(hub *presence.Hub, defaultLimit int) http.HandlerFunc {
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
		rooms, total := hub.Rooms(limit)
		writeJSON(w, http.StatusOK, roomList{Rooms: rooms, Total: total, Truncated: total > len(rooms), Degraded: hub.Health() != nil})
	}
}
