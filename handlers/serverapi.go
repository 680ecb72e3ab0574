package handlers

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/go-chi/chi/v5"

	"github.com/presence/presence/presence"
)

// The server API (behind the API key, see apikey.go): a room's members,
// and the disconnects of a user or a room. Answers are JSON, errors
// {"error": "..."} that say what was wrong.

// Pages of GET /api/rooms/{room}/members: DefaultMembersLimit members when
// no ?limit= is given, at most MaxMembersLimit.
const (
	DefaultMembersLimit = 100
	MaxMembersLimit     = 1000
)

// maxUserIDLen is the longest user id, as tokens allow (auth: sub).
const maxUserIDLen = 256

// maxDisconnectBody bounds the body of a disconnect: {"block_s": 86400}
// and some spaces.
const maxDisconnectBody = 1 << 10

// memberList is the answer of GET /api/rooms/{room}/members.
type memberList struct {
	Members []apiMember `json:"members"`
	People  int         `json:"people"` // the room's people, signed in or not
	// Next is the id to pass as ?after= for the next page; null on the
	// last.
	Next     *string `json:"next"`
	Degraded bool    `json:"degraded,omitempty"`
}

// apiMember is a signed-in member and their streams on every node.
type apiMember struct {
	ID          string `json:"id"`
	Name        string `json:"name,omitempty"`
	Connections int    `json:"connections"`
}

// handleMembers serves GET /api/rooms/{room}/members?limit=&after=: the
// room's signed-in members on every node, sorted by id, a page at a time.
func handleMembers(hub *presence.Hub) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		room, ok := roomParam(w, r)
		if !ok {
			return
		}
		q := r.URL.Query()
		limit := DefaultMembersLimit
		if s := q.Get("limit"); q.Has("limit") {
			n, err := strconv.Atoi(s)
			if err != nil || n < 1 || n > MaxMembersLimit {
				writeError(w, http.StatusBadRequest, "limit must be an integer from 1 to "+strconv.Itoa(MaxMembersLimit))
				return
			}
			limit = n
		}
		after := ""
		if q.Has("after") {
			if problem := checkUserID(q.Get("after")); problem != "" {
				writeError(w, http.StatusBadRequest, "after must be the id of a member, as next gives it: "+problem)
				return
			}
			after = "u:" + q.Get("after")
		}
		page, people, more := hub.Members(room, after, limit)
		list := memberList{Members: make([]apiMember, len(page)), People: people, Degraded: hub.Health() != nil}
		for i, m := range page {
			list.Members[i] = apiMember{ID: strings.TrimPrefix(m.ID, "u:"), Name: m.Name, Connections: m.Connections}
		}
		if more {
			list.Next = &list.Members[len(list.Members)-1].ID
		}
		writeJSON(w, http.StatusOK, list)
	}
}

// roomParam returns the path's room, or answers 400 saying which names
// are allowed.
func roomParam(w http.ResponseWriter, r *http.Request) (string, bool) {
	room := chi.URLParam(r, "room")
	if err := presence.ValidateRoom(room); err != nil {
		writeError(w, http.StatusBadRequest, presence.RoomRule)
		return "", false
	}
	return room, true
}

// pathParam returns the path parameter name, decoded: chi routes on the
// escaped path when the request's differs from the default escaping (an
// escaped '/', say), and then gives it escaped.
func pathParam(r *http.Request, name string) (string, error) {
	v := chi.URLParam(r, name)
	if r.URL.RawPath == "" {
		return v, nil
	}
	return url.PathUnescape(v)
}

// checkUserID says what is wrong with a user id ("" if nothing): as a
// token's sub, 1 to 256 bytes and no control characters.
func checkUserID(id string) string {
	switch {
	case id == "":
		return "it is empty"
	case len(id) > maxUserIDLen:
		return "it is longer than " + strconv.Itoa(maxUserIDLen) + " bytes"
	case strings.ContainsFunc(id, unicode.IsControl):
		return "it has control characters"
	}
	return ""
}

// disconnectAnswer is the answer of a disconnect.
type disconnectAnswer struct {
	Error string `json:"error,omitempty"`
	// ClosedHere is how many streams this node closed; the other nodes
	// close theirs within a second of being told.
	ClosedHere int  `json:"closed_here"`
	OthersTold bool `json:"others_told"` // false on a single node
	BlockedS   int  `json:"blocked_s,omitempty"`
}

// handleUserDisconnect serves POST /api/users/{id}/disconnect, with an
// optional body {"block_s": 60}: every stream of the signed-in user (room
// streams and watches) is closed on every node, and with block_s their new
// ones are refused with 403 for that many seconds.
func handleUserDisconnect(hub *presence.Hub) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, err := pathParam(r, "id")
		if problem := checkUserID(id); err != nil || problem != "" {
			writeError(w, http.StatusBadRequest, "the path must name a user id, as in their token's sub: "+problem)
			return
		}
		block, problem := readBlock(w, r)
		if problem != "" {
			writeError(w, http.StatusBadRequest, problem)
			return
		}
		disconnect(w, r, hub, presence.Disconnect{User: "u:" + id, Block: time.Duration(block) * time.Second}, block)
	}
}

// handleRoomDisconnect serves POST /api/rooms/{room}/disconnect: every
// stream of the room is closed on every node.
func handleRoomDisconnect(hub *presence.Hub) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		room, ok := roomParam(w, r)
		if !ok {
			return
		}
		disconnect(w, r, hub, presence.Disconnect{Room: room}, 0)
	}
}

// disconnect does d and answers what it did: 200, or 503 when the other
// nodes could not be told or too many users are blocked (the streams of
// this node are closed all the same).
func disconnect(w http.ResponseWriter, r *http.Request, hub *presence.Hub, d presence.Disconnect, block int) {
	ended, err := hub.Disconnect(r.Context(), d)
	answer := disconnectAnswer{ClosedHere: ended.Streams, OthersTold: ended.Told, BlockedS: block}
	switch {
	case err == nil:
		writeJSON(w, http.StatusOK, answer)
		return
	case errors.Is(err, presence.ErrInvalidDisconnect):
		writeError(w, http.StatusBadRequest, err.Error())
		return
	case errors.Is(err, presence.ErrNotTold):
		answer.Error = "the streams of this node are closed, but the other nodes could not be told (redis); retry"
	case errors.Is(err, presence.ErrBlockLimit):
		answer.Error = "the streams are closed, but the block was refused: too many users are blocked already; retry later"
		answer.BlockedS = 0
	default:
		answer.Error = "internal error"
	}
	w.Header().Set("Retry-After", retryAfterSeconds)
	writeJSON(w, http.StatusServiceUnavailable, answer)
}

// readBlock reads the optional body of a user's disconnect, and returns
// block_s, or says what is wrong with the body.
func readBlock(w http.ResponseWriter, r *http.Request) (int, string) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxDisconnectBody))
	if err != nil {
		return 0, "the body must be JSON such as {\"block_s\": 60}, of at most " + strconv.Itoa(maxDisconnectBody) + " bytes"
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return 0, ""
	}
	var req struct {
		BlockS *float64 `json:"block_s"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil || dec.Decode(&struct{}{}) != io.EOF {
		return 0, "the body must be empty or JSON such as {\"block_s\": 60}, with no other fields"
	}
	if req.BlockS == nil {
		return 0, ""
	}
	max := int(presence.MaxBlock / time.Second)
	n := *req.BlockS
	if n != math.Trunc(n) || n < 0 || n > float64(max) {
		return 0, "block_s must be a whole number of seconds from 0 to " + strconv.Itoa(max)
	}
	return int(n), ""
}
