package handlers

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/http"
	"time"

	"github.com/presence/presence/auth"
	"github.com/presence/presence/presence"
)

// IdentityOptions say how streams are told apart as people.
type IdentityOptions struct {
	// Tokens verifies signed-in users' tokens; nil: tokens are refused.
	Tokens *auth.Verifier
	// Private lists room-name patterns (auth.MatchRoom) whose streams need
	// a valid token.
	Private []string
}

// Cookies of the service.
const (
	// VisitorCookie holds a browser's random visitor id, so that its tabs
	// and reconnects count as one person.
	VisitorCookie = "presence_visitor"
	// TokenCookie may hold a signed-in user's token, as ?token= may.
	TokenCookie = "presence_token"
)

// visitorMaxAge is how long a visitor cookie lives: long, since it only
// tells a browser's tabs apart from other browsers.
const visitorMaxAge = 400 * 24 * time.Hour

// errNoTokens is the answer to a token when no key is configured.
var errNoTokens = errors.New("tokens are not accepted here: no token key is configured")

// identify tells who a stream request is, or answers it with 401 or 403
// and returns ok false. A valid token makes a signed-in member (who also
// follows the room's members); else a visitor cookie makes a visitor; else
// the stream is anonymous, and the response sets a visitor cookie for the
// browser's next streams.
func identify(w http.ResponseWriter, r *http.Request, opts IdentityOptions, room string) (m presence.Member, ok bool) {
	token := r.URL.Query().Get("token")
	if token == "" {
		if c, err := r.Cookie(TokenCookie); err == nil {
			token = c.Value
		}
	}
	private := false
	for _, p := range opts.Private {
		if auth.MatchRoom(p, room) {
			private = true
			break
		}
	}
	switch {
	case token != "":
		if opts.Tokens == nil {
			writeError(w, http.StatusUnauthorized, errNoTokens.Error())
			return m, false
		}
		claims, err := opts.Tokens.Verify(token)
		if err != nil {
			writeError(w, http.StatusUnauthorized, err.Error())
			return m, false
		}
		if !claims.Allows(room) {
			writeError(w, http.StatusForbidden, "this token does not open room "+room)
			return m, false
		}
		return presence.Member{ID: "u:" + claims.Subject, Name: claims.Name, Signed: true}, true
	case private:
		writeError(w, http.StatusUnauthorized, "room "+room+" needs a token (?token= or the "+TokenCookie+" cookie)")
		return m, false
	}
	if id, ok := visitorID(r); ok {
		return presence.Member{ID: "v:" + id}, true
	}
	newVisitorCookie(w, r)
	return presence.Member{}, true
}

// visitorID returns the request's visitor id, if it has a well-formed one:
// from the visitor cookie, else from ?visitor= (which the widget sends from
// other sites, where the cookie is not sent).
func visitorID(r *http.Request) (string, bool) {
	if c, err := r.Cookie(VisitorCookie); err == nil && validVisitor(c.Value) {
		return c.Value, true
	}
	if v := r.URL.Query().Get("visitor"); validVisitor(v) {
		return v, true
	}
	return "", false
}

// validVisitor accepts what setVisitorCookie makes: 32 hex digits.
func validVisitor(v string) bool {
	if len(v) != 32 {
		return false
	}
	_, err := hex.DecodeString(v)
	return err == nil
}

// setVisitorCookie gives the browser a new random visitor id, unless it
// has one.
func setVisitorCookie(w http.ResponseWriter, r *http.Request) {
	if _, ok := visitorID(r); !ok {
		newVisitorCookie(w, r)
	}
}

// newVisitorCookie gives the browser a new random visitor id.
func newVisitorCookie(w http.ResponseWriter, r *http.Request) {
	var b [16]byte
	rand.Read(b[:])
	http.SetCookie(w, &http.Cookie{
		Name:     VisitorCookie,
		Value:    hex.EncodeToString(b[:]),
		Path:     "/",
		MaxAge:   int(visitorMaxAge / time.Second),
		HttpOnly: true,
		Secure:   r.TLS != nil,
		SameSite: http.SameSiteLaxMode,
	})
}
