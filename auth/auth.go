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
	"errors"
	"fmt"
	"time"

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

// Limits on keys.
const (
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
