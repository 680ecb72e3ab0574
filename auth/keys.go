package auth

import (
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"strings"

	"github.com/golang-jwt/jwt/v5"
)

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
