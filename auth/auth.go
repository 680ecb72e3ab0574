// Package auth verifies the optional signed tokens (JWTs) that signed-in
// users pass as ?token= or in a cookie, and says which rooms a token opens.
//
// Tokens are signed with HS256 (a shared secret) or with RS256 / EdDSA
// (Ed25519), checked against a public key so that an auth service can mint
// them without sharing a secret. An algorithm is accepted only if its key is
// configured. Every rejection is one of five errors (see ErrMalformed and the
// others), and no error ever carries anything taken from the token, since
// errors may be logged.
package auth

import (
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"
)

// The errors Verify returns, always wrapped with a few words of detail; test
// them with errors.Is. Their messages are short and fit to show a user.
var (
	// ErrMalformed is for a string that is not a JWT at all: wrong number of
	// parts, bad base64 or JSON, no alg header, or longer than 8 KiB.
	ErrMalformed = errors.New("malformed token")
	// ErrExpired is for a correctly signed token whose exp (plus leeway) has
	// passed: the client should fetch a fresh token.
	ErrExpired = errors.New("token expired")
	// ErrSignature is for a token whose signature does not match the
	// configured key of its algorithm.
	ErrSignature = errors.New("token signature invalid")
	// ErrAlgorithm is for alg "none", an unknown algorithm, or one whose key
	// is not configured (e.g. HS256 when only a public key is set).
	ErrAlgorithm = errors.New("token algorithm not accepted")
	// ErrClaims is for a correctly signed token whose claims are unusable:
	// missing or bad sub or exp, a rooms claim that is not a list of valid
	// patterns, a name that is not a string, or nbf/iat in the future.
	ErrClaims = errors.New("token claims invalid")
)

// maxTokenLen bounds the token length Verify will look at, so that a huge
// query string or cookie costs nothing to reject.
const maxTokenLen = 8 << 10

// Limits on claims and keys.
const (
	// maxSubjectLen is the longest sub accepted, in bytes.
	maxSubjectLen = 256
	// maxNameRunes is the length a name is truncated to, in runes.
	maxNameRunes = 100
	// minSecretLen is the shortest HS256 secret NewVerifier accepts
	// (256 bits, the size of the HMAC-SHA256 output).
	minSecretLen = 32
	// minRSABits is the smallest RSA public key NewVerifier accepts.
	minRSABits = 2048
)

// Algorithm names, as in the JWT "alg" header.
const (
	algHS256 = "HS256"
	algRS256 = "RS256"
	algEdDSA = "EdDSA"
)

// Options configures a Verifier. Secret and PublicKeyFile may both be set;
// each algorithm is accepted only if its key is.
type Options struct {
	// Secret is the HS256 shared secret, at least 32 bytes;
	// empty: HS256 is not accepted.
	Secret []byte
	// PublicKeyFile is a PEM file with one RSA (RS256) or Ed25519 (EdDSA)
	// public key, as "PUBLIC KEY" (PKIX) or "RSA PUBLIC KEY" (PKCS#1);
	// empty: neither RS256 nor EdDSA is accepted.
	PublicKeyFile string
	// Leeway is the clock skew allowed on exp, nbf and iat; 0 means none.
	Leeway time.Duration
	// Now is the clock, for tests; nil means time.Now.
	Now func() time.Time
}

// Claims is what a valid token says, cleaned up and ready to use.
type Claims struct {
	// Subject is the user id (sub): 1 to 256 bytes, no control characters.
	Subject string
	// Name is the optional display name: trimmed, control characters
	// removed, at most 100 runes; "" when absent.
	Name string
	// Rooms are the room-name patterns (see MatchRoom) the token opens; nil
	// means any room, an empty list means none.
	Rooms []string
	// Expires is when the token stops being valid (exp).
	Expires time.Time
}

// Verifier checks tokens against the configured keys. It is safe for
// concurrent use and is never changed after NewVerifier.
type Verifier struct {
	secret  []byte            // HS256; nil if not configured
	rsaKey  *rsa.PublicKey    // RS256; nil if not configured
	edKey   ed25519.PublicKey // EdDSA; nil if not configured
	methods []string          // the accepted algorithms, for jwt.WithValidMethods
	parser  *jwt.Parser
	leeway  time.Duration
}

// NewVerifier returns an error (mentioning the file, never key bytes) if the
// key file cannot be read or parsed, or if the secret is shorter than 32
// bytes. With neither a secret nor a key file it returns (nil, nil): tokens
// are then not accepted at all (the caller decides what that means).
func NewVerifier(opts Options) (*Verifier, error) {
	if len(opts.Secret) == 0 && opts.PublicKeyFile == "" {
		return nil, nil
	}
	if opts.Leeway < 0 {
		return nil, errors.New("auth: token leeway must not be negative")
	}
	v := &Verifier{leeway: opts.Leeway}
	if len(opts.Secret) > 0 {
		if len(opts.Secret) < minSecretLen {
			return nil, fmt.Errorf("auth: token secret is %d bytes; it must be at least %d", len(opts.Secret), minSecretLen)
		}
		v.secret = append([]byte(nil), opts.Secret...)
		v.methods = append(v.methods, algHS256)
	}
	if opts.PublicKeyFile != "" {
		key, err := loadPublicKey(opts.PublicKeyFile)
		if err != nil {
			return nil, err
		}
		switch k := key.(type) {
		case *rsa.PublicKey:
			v.rsaKey = k
			v.methods = append(v.methods, algRS256)
		case ed25519.PublicKey:
			v.edKey = k
			v.methods = append(v.methods, algEdDSA)
		}
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	v.parser = jwt.NewParser(
		jwt.WithValidMethods(v.methods),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(opts.Leeway),
		jwt.WithTimeFunc(now),
		jwt.WithStrictDecoding(),
	)
	return v, nil
}

// Leeway is the clock skew allowed on exp: a token is accepted until its
// Expires plus Leeway, so a signed-in stream may last until then.
func (v *Verifier) Leeway() time.Duration { return v.leeway }

// loadPublicKey reads the one public key in a PEM file: an RSA key of at
// least minRSABits or an Ed25519 key. Errors name the file and what was
// wrong, never the file's bytes.
func loadPublicKey(file string) (any, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("auth: reading token public key: %w", err)
	}
	var key any
	for rest := data; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		var k any
		switch block.Type {
		case "PUBLIC KEY":
			k, err = x509.ParsePKIXPublicKey(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("auth: token public key file %q: cannot parse its PUBLIC KEY block", file)
			}
		case "RSA PUBLIC KEY":
			k, err = x509.ParsePKCS1PublicKey(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("auth: token public key file %q: cannot parse its RSA PUBLIC KEY block", file)
			}
		default:
			if strings.Contains(block.Type, "PRIVATE KEY") {
				return nil, fmt.Errorf("auth: token public key file %q holds a private key; give the public key only", file)
			}
			continue // e.g. a comment-like block; only keys matter
		}
		if key != nil {
			return nil, fmt.Errorf("auth: token public key file %q holds more than one public key", file)
		}
		key = k
	}
	switch k := key.(type) {
	case nil:
		return nil, fmt.Errorf("auth: token public key file %q holds no PEM \"PUBLIC KEY\" or \"RSA PUBLIC KEY\" block", file)
	case *rsa.PublicKey:
		if k.N.BitLen() < minRSABits {
			return nil, fmt.Errorf("auth: token public key file %q: RSA key is %d bits; it must be at least %d", file, k.N.BitLen(), minRSABits)
		}
		return k, nil
	case ed25519.PublicKey:
		return k, nil
	default:
		return nil, fmt.Errorf("auth: token public key file %q: key type %T not supported (want RSA or Ed25519)", file, key)
	}
}

// keyFor is the jwt.Keyfunc: it picks the configured key of the token's
// algorithm, checking the method's type too, so that a key is only ever used
// with the algorithm it was configured for (no RS256→HS256 confusion).
func (v *Verifier) keyFor(t *jwt.Token) (any, error) {
	switch t.Method.(type) {
	case *jwt.SigningMethodHMAC:
		if t.Method.Alg() == algHS256 && v.secret != nil {
			return v.secret, nil
		}
	case *jwt.SigningMethodRSA:
		if t.Method.Alg() == algRS256 && v.rsaKey != nil {
			return v.rsaKey, nil
		}
	case *jwt.SigningMethodEd25519:
		if t.Method.Alg() == algEdDSA && v.edKey != nil {
			return v.edKey, nil
		}
	}
	return nil, ErrAlgorithm
}

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

// Allows reports whether the claims let the holder open room: true if Rooms
// is nil, else if any pattern matches.
func (c Claims) Allows(room string) bool {
	if c.Rooms == nil {
		return true
	}
	for _, p := range c.Rooms {
		if MatchRoom(p, room) {
			return true
		}
	}
	return false
}

// MatchRoom reports whether room matches pattern, the whole name. The
// pattern syntax (of --private-rooms and of a token's rooms claim) is
// path.Match's:
//
//   - '*' matches any run of characters, none included (room names have no
//     '/', so it spans the whole name);
//   - '?' matches exactly one character;
//   - '[abc]' and '[a-z]' match one character of the class, '[^abc]' and
//     '[^a-z]' one character not in it;
//   - '\' makes the next character literal ('\*' is a star);
//   - any other character matches itself, case-sensitively.
//
// So "docs-*" matches "docs-intro" and "docs-", not "my-docs-intro". A
// class opened by '!' ("[!x]", negation in shells and .gitignore) is not
// negation to path.Match but a class of '!' and 'x', which would open what
// its author meant to close: ValidatePattern refuses it and here it matches
// nothing. An invalid pattern matches nothing.
func MatchRoom(pattern, room string) bool {
	if bangClass(pattern) {
		return false
	}
	ok, err := path.Match(pattern, room)
	return ok && err == nil
}

// ValidatePattern returns an error for a pattern MatchRoom would not match
// as written: one that path.Match rejects, or one with a class opened by '!'
// (write '[^...]' for a class that excludes). Settings are checked with it at
// start, and a token whose rooms claim fails it is refused with ErrClaims.
func ValidatePattern(pattern string) error {
	// Matching against "" fails at the first literal or class and then
	// path.Match checks the rest of the pattern's syntax; "*" alone or a
	// run of '*' matches "" and is valid.
	if _, err := path.Match(pattern, ""); err != nil {
		return fmt.Errorf("room pattern %q: %w", pattern, err)
	}
	if bangClass(pattern) {
		return fmt.Errorf("room pattern %q: %w: a class opened by \"[!\" is not negation here; write \"[^...]\" for a class that excludes", pattern, path.ErrBadPattern)
	}
	return nil
}

// bangClass reports whether pattern has a character class whose first
// character is an unescaped '!', read as path.Match reads classes.
func bangClass(pattern string) bool {
	for i := 0; i < len(pattern); i++ {
		switch pattern[i] {
		case '\\':
			i++ // the escaped character is a literal
		case '[':
			i++
			if i < len(pattern) && pattern[i] == '!' {
				return true
			}
			if i < len(pattern) && pattern[i] == '^' {
				i++
			}
			// Skip to the class's closing ']'; a ']' right at the start
			// is not one (path.Match refuses an empty class).
			for start := i; i < len(pattern); i++ {
				if pattern[i] == '\\' {
					i++
				} else if pattern[i] == ']' && i > start {
					break
				}
			}
		}
	}
	return false
}
