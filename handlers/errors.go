package handlers

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/presence/presence/presence"
)

// writeJSON answers with v as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// writeError answers with {"error": msg}.
func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

// retryAfterSeconds is what a refused client is told to wait.
const retryAfterSeconds = "5"

// writeJoinError maps an error of presence.Hub.Join to an answer that says
// what was wrong without leaking internals, and returns the refusal reason
// for metrics ("" when it was bad input, not a refusal).
func writeJoinError(w http.ResponseWriter, err error) string {
	switch {
	case errors.Is(err, presence.ErrInvalidRoom):
		writeError(w, http.StatusBadRequest, presence.RoomRule)
		return ""
	case errors.Is(err, presence.ErrStreamLimit):
		w.Header().Set("Retry-After", retryAfterSeconds)
		writeError(w, http.StatusServiceUnavailable, "this server holds as many streams as it may; retry later")
		return "stream_limit"
	case errors.Is(err, presence.ErrRoomLimit):
		w.Header().Set("Retry-After", retryAfterSeconds)
		writeError(w, http.StatusServiceUnavailable, "this server holds as many rooms as it may; retry later")
		return "room_limit"
	case errors.Is(err, presence.ErrSourceLimit):
		w.Header().Set("Retry-After", retryAfterSeconds)
		writeError(w, http.StatusTooManyRequests, "too many streams from your address; close some, or retry later")
		return refusedPerIP
	case errors.Is(err, presence.ErrWatchSourceLimit):
		w.Header().Set("Retry-After", retryAfterSeconds)
		writeError(w, http.StatusTooManyRequests, "too many rooms nobody is in are watched from your address; close some watches, or retry later")
		return refusedWatchPerIP
	case errors.Is(err, presence.ErrBlocked):
		writeError(w, http.StatusForbidden, "this user is blocked for now")
		return refusedBlocked
	case errors.Is(err, presence.ErrClosed):
		w.Header().Set("Retry-After", retryAfterSeconds)
		writeError(w, http.StatusServiceUnavailable, "server is shutting down; reconnect")
		return "shutting_down"
	default:
		writeError(w, http.StatusInternalServerError, "internal error")
		return "internal"
	}
}
