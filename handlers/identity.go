package handlers

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/http"
	"strings"
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
// follows the room's members), whose stream must end when the token does
// (expires, zero for anyone else); else a visitor cookie makes a visitor;
// else the stream is anonymous, and the response sets a visitor cookie for
// the browser's next streams.
func identify(w http.ResponseWriter, r *http.Request, opts IdentityOptions, room string) (m presence.Member, expires time.Time, ok bool) {
	claims, signed, ok := requestClaims(w, r, opts)
	switch {
	case !ok:
		return m, expires, false
	case signed:
		if !claims.Allows(room) {
			writeError(w, http.StatusForbidden, "this token does not open room "+room)
			return m, expires, false
		}
		return presence.Member{ID: "u:" + claims.Subject, Name: claims.Name, Signed: true}, claims.Expires, true
	case opts.private(room):
		writeError(w, http.StatusUnauthorized, "room "+room+" needs a token ("+tokenCarriers+")")
		return m, expires, false
	}
	if id, ok := visitorID(r); ok {
		return presence.Member{ID: "v:" + id}, expires, true
	}
	newVisitorCookie(w, r)
	return presence.Member{}, expires, true
}

// tokenCarriers says, in error messages, how a token may be sent.
const tokenCarriers = "Authorization: Bearer, ?token= or the " + TokenCookie + " cookie"

// requestToken returns the token a request carries, "" if none: an
// Authorization: Bearer header, else ?token=, else the token cookie. Another
// Authorization scheme (a site's Basic login, which the browser adds by
// itself) is not a token and is ignored; so is an empty value, as a page
// whose user signed out may send.
func requestToken(r *http.Request) string {
	if scheme, tok, _ := strings.Cut(r.Header.Get("Authorization"), " "); strings.EqualFold(scheme, "Bearer") {
		if tok = strings.TrimSpace(tok); tok != "" {
			return tok
		}
	}
	if tok := r.URL.Query().Get("token"); tok != "" {
		return tok
	}
	if c, err := r.Cookie(TokenCookie); err == nil {
		return c.Value
	}
	return ""
}

// requestClaims verifies the request's token, if it has one: signed is
// false without a token. A token that does not verify is answered with 401
// saying why (expired, bad signature...), and ok is false.
func requestClaims(w http.ResponseWriter, r *http.Request, opts IdentityOptions) (c auth.Claims, signed, ok bool) {
	token := requestToken(r)
	if token == "" {
		return c, false, true
	}
	if opts.Tokens == nil {
		writeError(w, http.StatusUnauthorized, errNoTokens.Error())
		return c, false, false
	}
	c, err := opts.Tokens.Verify(token)
	if err != nil {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		writeError(w, http.StatusUnauthorized, err.Error())
		return c, false, false
	}
	return c, true, true
}

// private reports whether room needs a token that opens it.
func (opts IdentityOptions) private(room string) bool {
	for _, p := range opts.Private {
		if auth.MatchRoom(p, room) {
			return true
		}
	}
	return false
}

// leeway is how long past its exp a token is still accepted, and so how
// long past it a signed-in stream may last.
func (opts IdentityOptions) leeway() time.Duration {
	if opts.Tokens == nil {
		return 0
	}
	return opts.Tokens.Leeway()
}

// visitorID returns the request's visitor id, if it has a well-formed one:
// from the visitor cookie, else from ?visitor= (which the widget sends from
// other sites, where the cookie is not sent). The id is canonical (lower
// case), so that an upper-case copy of an id is the same person.
func visitorID(r *http.Request) (string, bool) {
	if c, err := r.Cookie(VisitorCookie); err == nil {
		if id, ok := canonicalVisitor(c.Value); ok {
			return id, true
		}
	}
	return canonicalVisitor(r.URL.Query().Get("visitor"))
}

// canonicalVisitor accepts what setVisitorCookie makes, 32 hex digits, in
// either case, and returns it in lower case.
func canonicalVisitor(v string) (string, bool) {
	if len(v) != 32 {
		return "", false
	}
	upper := false
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case '0' <= c && c <= '9', 'a' <= c && c <= 'f':
		case 'A' <= c && c <= 'F':
			upper = true
		default:
			return "", false
		}
	}
	if upper {
		v = strings.ToLower(v)
	}
	return v, true
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
