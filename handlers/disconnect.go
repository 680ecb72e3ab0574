package handlers

import (
	"context"
	"errors"
	"net/http"

	"github.com/presence/presence/auth"
)

// reasonDisconnected is the disconnect reason of a stream that the server
// API ended (POST /api/users/{id}/disconnect, /api/rooms/{room}/disconnect).
const reasonDisconnected = "disconnected"

// errDisconnected is the cause of a stream's context that the hub ended.
var errDisconnected = errors.New("disconnected by the server API")

// disconnectable returns r with a context that end cancels, for the hub to
// end the stream (presence.JoinOptions.End, WatchOptions.End): end never
// blocks and may be called from any goroutine. release frees the context
// when the stream ends, as a defer.
func disconnectable(r *http.Request) (_ *http.Request, end func(), release func()) {
	ctx, cancel := context.WithCancelCause(r.Context())
	return r.WithContext(ctx), func() { cancel(errDisconnected) }, func() { cancel(nil) }
}

// disconnected reports whether r's stream was ended by the hub.
func disconnected(r *http.Request) bool {
	return errors.Is(context.Cause(r.Context()), errDisconnected)
}

// memberID is the hub's member ID of a signed-in user, "" for anyone else,
// as identify makes it.
func memberID(claims auth.Claims, signed bool) string {
	if !signed {
		return ""
	}
	return "u:" + claims.Subject
}
