package auth

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"
)

// Limits on claims.
const (
	// maxSubjectLen is the longest sub accepted, in bytes.
	maxSubjectLen = 256
	// maxNameRunes is the length a name is truncated to, in runes.
	maxNameRunes = 100
)

// claimsFrom checks and cleans the claims of a token whose signature and
// times jwt has already verified.
func claimsFrom(mc jwt.MapClaims) (Claims, error) {
	var c Claims
	sub, ok := mc["sub"].(string)
	switch {
	case !ok && mc["sub"] == nil:
		return Claims{}, reject(ErrClaims, "missing sub")
	case !ok:
		return Claims{}, reject(ErrClaims, "sub is not a string")
	case sub == "":
		return Claims{}, reject(ErrClaims, "sub is empty")
	case len(sub) > maxSubjectLen:
		return Claims{}, reject(ErrClaims, "sub is too long")
	case strings.IndexFunc(sub, unicode.IsControl) >= 0:
		return Claims{}, reject(ErrClaims, "sub has control characters")
	}
	c.Subject = sub

	if raw, present := mc["name"]; present && raw != nil {
		name, ok := raw.(string)
		if !ok {
			return Claims{}, reject(ErrClaims, "name is not a string")
		}
		c.Name = cleanName(name)
	}

	if raw, present := mc["rooms"]; present {
		list, ok := raw.([]any)
		if !ok {
			return Claims{}, reject(ErrClaims, "rooms is not a list")
		}
		c.Rooms = make([]string, 0, len(list))
		for _, r := range list {
			p, ok := r.(string)
			if !ok {
				return Claims{}, reject(ErrClaims, "rooms has an entry that is not a string")
			}
			if ValidatePattern(p) != nil {
				return Claims{}, reject(ErrClaims, "rooms has an invalid pattern")
			}
			c.Rooms = append(c.Rooms, p)
		}
	}

	exp, err := mc.GetExpirationTime()
	if err != nil || exp == nil { // jwt has checked it; be safe all the same
		return Claims{}, reject(ErrClaims, "missing exp")
	}
	c.Expires = exp.Time
	return c, nil
}

// cleanName removes control characters, trims white space and truncates to
// maxNameRunes runes.
func cleanName(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return -1
		}
		return r
	}, s)
	s = strings.TrimSpace(s)
	if utf8.RuneCountInString(s) > maxNameRunes {
		n := 0
		for i := range s {
			if n == maxNameRunes {
				s = s[:i]
				break
			}
			n++
		}
		s = strings.TrimSpace(s)
	}
	return s
}
