package handlers

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"
)

// MinAPIKeyLen is the shortest API key taken, in bytes: a key is a secret
// that grants every room and every stream, so it must not be guessable.
const MinAPIKeyLen = 16

// apiKey is the server API's key (Options.APIKey), kept as its SHA-256 so
// that a comparison takes the same time whatever key is given, its length
// included.
type apiKey struct {
	sum [sha256.Size]byte
	set bool // a key is configured
}

func newAPIKey(key string) apiKey {
	if key == "" {
		return apiKey{}
	}
	return apiKey{sum: sha256.Sum256([]byte(key)), set: true}
}

// bearer returns the request's Authorization: Bearer value, "" if none.
func bearer(r *http.Request) string {
	scheme, tok, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(tok)
}

// server reports whether r comes from the server side: its Authorization:
// Bearer is the API key. Anything else (a user's token, nothing) is not.
func (k apiKey) server(r *http.Request) bool {
	tok := bearer(r)
	if !k.set || tok == "" {
		return false
	}
	sum := sha256.Sum256([]byte(tok))
	return subtle.ConstantTimeCompare(sum[:], k.sum[:]) == 1
}

// require answers 401 with a JSON error, saying which of the three it is,
// unless the request carries the API key: none configured, none given, or
// a wrong one.
func (k apiKey) require(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if k.server(r) {
			next.ServeHTTP(w, r)
			return
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="presence server API"`)
		switch {
		case !k.set:
			writeError(w, http.StatusUnauthorized, "the server API is off: no API key is configured on this server")
		case bearer(r) == "":
			writeError(w, http.StatusUnauthorized, "the server API needs the API key, sent as Authorization: Bearer")
		default:
			writeError(w, http.StatusUnauthorized, "wrong API key")
		}
	})
}
