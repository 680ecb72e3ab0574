package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func TestNewVerifier(t *testing.T) {
	k := newKeys(t)
	dir := t.TempDir()

	v, err := NewVerifier(Options{})
	if v != nil || err != nil {
		t.Fatalf("no keys: (%v, %v), want (nil, nil)", v, err)
	}
	// A nil Verifier accepts nothing, without panicking.
	_, err = v.Verify(sign(t, jwt.SigningMethodHS256, k.secret, jwt.MapClaims{"sub": "u", "exp": exp(time.Hour)}))
	wantErr(t, err, ErrAlgorithm)

	short := "short-secret-31-bytes-long-xxxx"
	if _, err := NewVerifier(Options{Secret: []byte(short)}); err == nil || strings.Contains(err.Error(), short) {
		t.Fatalf("31-byte secret: %v", err)
	}
	if _, err := NewVerifier(Options{Secret: k.secret, Leeway: -time.Second}); err == nil {
		t.Fatal("negative leeway accepted")
	}

	// The secret is copied: changing the caller's slice changes nothing.
	secret := append([]byte(nil), k.secret...)
	v = mustVerifier(t, Options{Secret: secret})
	tok := sign(t, jwt.SigningMethodHS256, k.secret, jwt.MapClaims{"sub": "u", "exp": exp(time.Hour)})
	secret[0] ^= 0xff
	if _, err := v.Verify(tok); err != nil {
		t.Fatalf("after changing the caller's secret: %v", err)
	}

	rsaPriv := writePEM(t, dir, "rsa-private.pem", "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(k.rsa))
	pkcs8, err := x509.MarshalPKCS8PrivateKey(k.ed)
	if err != nil {
		t.Fatal(err)
	}
	edPriv := writePEM(t, dir, "ed-private.pem", "PRIVATE KEY", pkcs8)
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecPub := writePEM(t, dir, "ec.pem", "PUBLIC KEY", pkix(t, &ec.PublicKey))
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	smallPub := writePEM(t, dir, "rsa-1024.pem", "PUBLIC KEY", pkix(t, &small.PublicKey))
	garbage := writePEM(t, dir, "garbage.pem", "PUBLIC KEY", []byte("not DER at all, just some bytes"))
	garbage1 := writePEM(t, dir, "garbage1.pem", "RSA PUBLIC KEY", []byte("not DER at all, just some bytes"))
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG9v user@host\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	two := filepath.Join(dir, "two.pem")
	rsaPEM, _ := os.ReadFile(k.rsaPKIXFile)
	edPEM, _ := os.ReadFile(k.edFile)
	if err := os.WriteFile(two, append(append([]byte{}, rsaPEM...), edPEM...), 0o600); err != nil {
		t.Fatal(err)
	}
	certLike := filepath.Join(dir, "with-params.pem")
	params := pem.EncodeToMemory(&pem.Block{Type: "EC PARAMETERS", Bytes: []byte{6, 8, 42, 134, 72, 206, 61, 3, 1, 7}})
	if err := os.WriteFile(certLike, append(params, edPEM...), 0o600); err != nil {
		t.Fatal(err)
	}

	for _, file := range []string{
		filepath.Join(dir, "missing.pem"), dir, rsaPriv, edPriv, ecPub, smallPub, garbage, garbage1, notPEM, two,
	} {
		_, err := NewVerifier(Options{PublicKeyFile: file})
		if err == nil {
			t.Errorf("%s: no error", filepath.Base(file))
			continue
		}
		if !strings.Contains(err.Error(), file) {
			t.Errorf("%s: error %q does not name the file", filepath.Base(file), err)
		}
		data, _ := os.ReadFile(file)
		if block, _ := pem.Decode(data); block != nil {
			body := base64.StdEncoding.EncodeToString(block.Bytes)
			if len(body) > 16 && strings.Contains(err.Error(), body[:16]) {
				t.Errorf("%s: error %q shows key bytes", filepath.Base(file), err)
			}
		}
		// With a valid secret too: still an error, not a half-configured Verifier.
		if v, err := NewVerifier(Options{Secret: k.secret, PublicKeyFile: file}); err == nil || v != nil {
			t.Errorf("%s with secret: (%v, %v)", filepath.Base(file), v, err)
		}
	}

	// Other PEM blocks before the key are skipped.
	v = mustVerifier(t, Options{PublicKeyFile: certLike})
	if _, err := v.Verify(sign(t, jwt.SigningMethodEdDSA, k.ed, jwt.MapClaims{"sub": "u", "exp": exp(time.Hour)})); err != nil {
		t.Fatal(err)
	}
}
