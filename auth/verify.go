package auth

import (
	"errors"
	"fmt"
	"slices"

	"github.com/golang-jwt/jwt/v5"
)

// maxTokenLen bounds the token length Verify will look at, so that a huge
// query string or cookie costs nothing to reject.
const maxTokenLen = 8 << 10

// reject wraps one of the five errors with a fixed detail. The detail is
// always a constant of this package: nothing from the token goes in.
func reject(err error, detail string) error {
	return fmt.Errorf("%w: %s", err, detail)
}

// Verify checks token and returns its claims, or one of the errors above,
// wrapped with a few words of detail that never include token contents.
// A nil Verifier (no keys configured) accepts no token: ErrAlgorithm.
func (v *Verifier) Verify(token string) (Claims, error) {
	if v == nil {
		return Claims{}, reject(ErrAlgorithm, "token verification is not configured")
	}
	if token == "" {
		return Claims{}, reject(ErrMalformed, "empty")
	}
	if len(token) > maxTokenLen {
		return Claims{}, reject(ErrMalformed, "too long")
	}
	mc := jwt.MapClaims{}
	t, err := v.parser.ParseWithClaims(token, mc, v.keyFor)
	if err != nil {
		return Claims{}, v.mapError(t, err)
	}
	return claimsFrom(mc)
}

// mapError turns an error of jwt's parser into one of the five errors. It
// looks only at error identities and the algorithm, never at jwt's message
// texts, some of which quote parts of the token.
func (v *Verifier) mapError(t *jwt.Token, err error) error {
	switch {
	case errors.Is(err, ErrAlgorithm): // from keyFor
		return reject(ErrAlgorithm, "no key configured for its algorithm")
	case errors.Is(err, jwt.ErrTokenMalformed):
		return reject(ErrMalformed, "not a well-formed JWT")
	case t != nil && t.Method == nil:
		// alg missing, not a string, or not an algorithm jwt knows.
		if _, ok := t.Header["alg"].(string); ok {
			return reject(ErrAlgorithm, "unknown algorithm")
		}
		return reject(ErrMalformed, "no algorithm in header")
	case t != nil && !v.accepts(t.Method.Alg()):
		// jwt reports a method outside WithValidMethods as a bad
		// signature; it is an algorithm we do not take.
		if t.Method.Alg() == jwt.SigningMethodNone.Alg() {
			return reject(ErrAlgorithm, "unsigned tokens are not accepted")
		}
		return reject(ErrAlgorithm, "no key configured for its algorithm")
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return reject(ErrSignature, "does not match the configured key")
	case errors.Is(err, jwt.ErrTokenExpired):
		return reject(ErrExpired, "exp has passed")
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return reject(ErrClaims, "missing exp")
	case errors.Is(err, jwt.ErrInvalidType):
		return reject(ErrClaims, "exp, nbf or iat is not a number")
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return reject(ErrClaims, "not valid yet (nbf)")
	case errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return reject(ErrClaims, "issued in the future (iat)")
	case errors.Is(err, jwt.ErrTokenInvalidClaims):
		return reject(ErrClaims, "claims rejected")
	default:
		// Not expected from jwt; refuse all the same.
		return reject(ErrMalformed, "not accepted")
	}
}

// accepts reports whether alg is one of the configured algorithms.
func (v *Verifier) accepts(alg string) bool { return slices.Contains(v.methods, alg) }
