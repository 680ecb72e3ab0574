package auth

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// allErrors are the five errors Verify may return.
var allErrors = []error{ErrMalformed, ErrExpired, ErrSignature, ErrAlgorithm, ErrClaims}

// testNow is the fixed clock of the tests.
var testNow = time.Unix(1_900_000_000, 0)

// keys holds the key material of one test, written to t.TempDir() as PEM.
type keys struct {
	secret   []byte
	rsa      *rsa.PrivateKey
	rsaOther *rsa.PrivateKey
	ed       ed25519.PrivateKey
	edOther  ed25519.PrivateKey

	rsaPKIXFile  string // "PUBLIC KEY" with rsa's public key
	rsaPKCS1File string // "RSA PUBLIC KEY" with rsa's public key
	edFile       string // "PUBLIC KEY" with ed's public key
}

func newKeys(t testing.TB) *keys {
	t.Helper()
	dir := t.TempDir()
	k := &keys{secret: []byte("0123456789abcdef0123456789abcdef-test-secret")}
	var err error
	if k.rsa, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		t.Fatal(err)
	}
	if k.rsaOther, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		t.Fatal(err)
	}
	if _, k.ed, err = ed25519.GenerateKey(rand.Reader); err != nil {
		t.Fatal(err)
	}
	if _, k.edOther, err = ed25519.GenerateKey(rand.Reader); err != nil {
		t.Fatal(err)
	}
	k.rsaPKIXFile = writePEM(t, dir, "rsa.pem", "PUBLIC KEY", pkix(t, &k.rsa.PublicKey))
	k.rsaPKCS1File = writePEM(t, dir, "rsa-pkcs1.pem", "RSA PUBLIC KEY", x509.MarshalPKCS1PublicKey(&k.rsa.PublicKey))
	k.edFile = writePEM(t, dir, "ed.pem", "PUBLIC KEY", pkix(t, k.ed.Public()))
	return k
}

func pkix(t testing.TB, pub any) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func writePEM(t testing.TB, dir, name, typ string, der []byte) string {
	t.Helper()
	file := filepath.Join(dir, name)
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}

func mustVerifier(t testing.TB, opts Options) *Verifier {
	t.Helper()
	if opts.Now == nil {
		opts.Now = func() time.Time { return testNow }
	}
	v, err := NewVerifier(opts)
	if err != nil {
		t.Fatal(err)
	}
	if v == nil {
		t.Fatal("NewVerifier returned a nil Verifier")
	}
	return v
}

// sign mints a token with jwt, as a real auth service would.
func sign(t testing.TB, m jwt.SigningMethod, key any, claims jwt.MapClaims) string {
	t.Helper()
	tok, err := jwt.NewWithClaims(m, claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// b64 is the JWT segment encoding.
func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// unsigned builds an "alg: none" token by hand.
func unsigned(payload string) string {
	return b64(`{"alg":"none","typ":"JWT"}`) + "." + b64(payload) + "."
}

// hs256Raw signs header and payload JSON with HS256 by hand, for payloads
// jwt.MapClaims would not produce.
func hs256Raw(t testing.TB, secret []byte, header, payload string) string {
	t.Helper()
	signing := b64(header) + "." + b64(payload)
	sig, err := jwt.SigningMethodHS256.Sign(signing, secret)
	if err != nil {
		t.Fatal(err)
	}
	return signing + "." + base64.RawURLEncoding.EncodeToString(sig)
}

func exp(d time.Duration) int64 { return testNow.Add(d).Unix() }

// wantErr checks that err is target and none of the other four errors, and
// that its message leaks none of the given strings.
func wantErr(t *testing.T, err, target error, secrets ...string) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("error = %v, want %v", err, target)
	}
	for _, e := range allErrors {
		if e != target && errors.Is(err, e) {
			t.Fatalf("error %v is also %v", err, e)
		}
	}
	for _, s := range secrets {
		if s != "" && strings.Contains(err.Error(), s) {
			t.Fatalf("error %q leaks %q", err, s)
		}
	}
}
