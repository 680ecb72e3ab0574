package auth

import (
	"encoding/json"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func TestVerifyValid(t *testing.T) {
	k := newKeys(t)
	cases := []struct {
		name string
		opts Options
		m    jwt.SigningMethod
		key  any
	}{
		{"HS256", Options{Secret: k.secret}, jwt.SigningMethodHS256, k.secret},
		{"RS256 PKIX", Options{PublicKeyFile: k.rsaPKIXFile}, jwt.SigningMethodRS256, k.rsa},
		{"RS256 PKCS1", Options{PublicKeyFile: k.rsaPKCS1File}, jwt.SigningMethodRS256, k.rsa},
		{"EdDSA", Options{PublicKeyFile: k.edFile}, jwt.SigningMethodEdDSA, k.ed},
		{"HS256 with RSA too", Options{Secret: k.secret, PublicKeyFile: k.rsaPKIXFile}, jwt.SigningMethodHS256, k.secret},
		{"RS256 with secret too", Options{Secret: k.secret, PublicKeyFile: k.rsaPKIXFile}, jwt.SigningMethodRS256, k.rsa},
		{"EdDSA with secret too", Options{Secret: k.secret, PublicKeyFile: k.edFile}, jwt.SigningMethodEdDSA, k.ed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v := mustVerifier(t, c.opts)

			got, err := v.Verify(sign(t, c.m, c.key, jwt.MapClaims{"sub": "u-1", "exp": exp(time.Hour)}))
			if err != nil {
				t.Fatal(err)
			}
			want := Claims{Subject: "u-1", Expires: testNow.Add(time.Hour)}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("claims = %+v, want %+v", got, want)
			}
			if !got.Allows("anything") {
				t.Fatal("token without rooms must open every room")
			}

			got, err = v.Verify(sign(t, c.m, c.key, jwt.MapClaims{
				"sub": "u-2", "name": "Ada Lovelace", "rooms": []string{"docs-*", "lobby"},
				"exp": exp(time.Minute), "iat": testNow.Unix(), "nbf": testNow.Unix(), "iss": "ignored",
			}))
			if err != nil {
				t.Fatal(err)
			}
			want = Claims{Subject: "u-2", Name: "Ada Lovelace", Rooms: []string{"docs-*", "lobby"}, Expires: testNow.Add(time.Minute)}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("claims = %+v, want %+v", got, want)
			}
			if !got.Allows("docs-intro") || !got.Allows("lobby") || got.Allows("blog") {
				t.Fatalf("Allows is wrong for rooms %q", got.Rooms)
			}
		})
	}
}

func TestExpiry(t *testing.T) {
	k := newKeys(t)
	strict := mustVerifier(t, Options{Secret: k.secret})
	lenient := mustVerifier(t, Options{Secret: k.secret, Leeway: 30 * time.Second})
	tok := func(claims jwt.MapClaims) string {
		claims["sub"] = "u-1"
		return sign(t, jwt.SigningMethodHS256, k.secret, claims)
	}

	expired := tok(jwt.MapClaims{"exp": exp(-10 * time.Second)})
	_, err := strict.Verify(expired)
	wantErr(t, err, ErrExpired, expired, "u-1")
	if _, err := lenient.Verify(expired); err != nil {
		t.Fatalf("expired 10s ago with 30s leeway: %v", err)
	}
	_, err = lenient.Verify(tok(jwt.MapClaims{"exp": exp(-time.Minute)}))
	wantErr(t, err, ErrExpired)
	// exp is the first instant at which the token is no longer valid.
	_, err = strict.Verify(tok(jwt.MapClaims{"exp": exp(0)}))
	wantErr(t, err, ErrExpired)
	if _, err := strict.Verify(tok(jwt.MapClaims{"exp": exp(time.Second)})); err != nil {
		t.Fatal(err)
	}

	notYet := tok(jwt.MapClaims{"exp": exp(time.Hour), "nbf": exp(10 * time.Second)})
	_, err = strict.Verify(notYet)
	wantErr(t, err, ErrClaims)
	if _, err := lenient.Verify(notYet); err != nil {
		t.Fatalf("nbf in 10s with 30s leeway: %v", err)
	}
	future := tok(jwt.MapClaims{"exp": exp(time.Hour), "iat": exp(10 * time.Second)})
	_, err = strict.Verify(future)
	wantErr(t, err, ErrClaims)
	if _, err := lenient.Verify(future); err != nil {
		t.Fatalf("iat in 10s with 30s leeway: %v", err)
	}

	// The default clock is the real one.
	v, err := NewVerifier(Options{Secret: k.secret})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(tok(jwt.MapClaims{"exp": time.Now().Add(time.Minute).Unix()})); err != nil {
		t.Fatal(err)
	}
	_, err = v.Verify(tok(jwt.MapClaims{"exp": time.Now().Add(-time.Minute).Unix()}))
	wantErr(t, err, ErrExpired)
}

func TestSignature(t *testing.T) {
	k := newKeys(t)
	claims := jwt.MapClaims{"sub": "user-sig", "exp": exp(time.Hour)}

	hs := mustVerifier(t, Options{Secret: k.secret})
	wrong := sign(t, jwt.SigningMethodHS256, []byte("another secret, also 32 bytes or more"), claims)
	_, err := hs.Verify(wrong)
	wantErr(t, err, ErrSignature, wrong, "user-sig")

	rs := mustVerifier(t, Options{PublicKeyFile: k.rsaPKIXFile})
	wrong = sign(t, jwt.SigningMethodRS256, k.rsaOther, claims)
	_, err = rs.Verify(wrong)
	wantErr(t, err, ErrSignature, wrong, "user-sig")

	ed := mustVerifier(t, Options{PublicKeyFile: k.edFile})
	wrong = sign(t, jwt.SigningMethodEdDSA, k.edOther, claims)
	_, err = ed.Verify(wrong)
	wantErr(t, err, ErrSignature, wrong, "user-sig")

	// A good token whose payload was changed (sub swapped for another).
	good := sign(t, jwt.SigningMethodRS256, k.rsa, claims)
	parts := strings.Split(good, ".")
	forged := parts[0] + "." + b64(`{"sub":"admin","exp":`+jsonNum(exp(time.Hour))+`}`) + "." + parts[2]
	_, err = rs.Verify(forged)
	wantErr(t, err, ErrSignature, "admin")
	// Its signature cut short, or dropped.
	_, err = rs.Verify(parts[0] + "." + parts[1] + "." + parts[2][:40])
	wantErr(t, err, ErrSignature)
	_, err = rs.Verify(parts[0] + "." + parts[1] + ".")
	wantErr(t, err, ErrSignature)
}

func jsonNum(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}

func TestAlgorithm(t *testing.T) {
	k := newKeys(t)
	claims := jwt.MapClaims{"sub": "user-alg", "exp": exp(time.Hour)}
	hs := mustVerifier(t, Options{Secret: k.secret})
	rs := mustVerifier(t, Options{PublicKeyFile: k.rsaPKIXFile})
	ed := mustVerifier(t, Options{PublicKeyFile: k.edFile})
	both := mustVerifier(t, Options{Secret: k.secret, PublicKeyFile: k.rsaPKIXFile})

	none := unsigned(`{"sub":"user-alg","exp":` + jsonNum(exp(time.Hour)) + `}`)
	for name, v := range map[string]*Verifier{"hs": hs, "rs": rs, "ed": ed, "both": both} {
		_, err := v.Verify(none)
		wantErr(t, err, ErrAlgorithm, none, "user-alg")
		// The same with a signature tacked on.
		_, err = v.Verify(none + b64("x"))
		wantErr(t, err, ErrAlgorithm)
		// jwt's own "none" signing, with its opt-in key.
		tok := sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, claims)
		_, err = v.Verify(tok)
		if !errors.Is(err, ErrAlgorithm) {
			t.Fatalf("%s: alg none: %v", name, err)
		}
	}

	hsTok := sign(t, jwt.SigningMethodHS256, k.secret, claims)
	rsTok := sign(t, jwt.SigningMethodRS256, k.rsa, claims)
	edTok := sign(t, jwt.SigningMethodEdDSA, k.ed, claims)
	for _, c := range []struct {
		name string
		v    *Verifier
		tok  string
	}{
		{"HS256 with public key only", rs, hsTok},
		{"HS256 with Ed25519 key only", ed, hsTok},
		{"RS256 with secret only", hs, rsTok},
		{"RS256 with Ed25519 key", ed, rsTok},
		{"EdDSA with secret only", hs, edTok},
		{"EdDSA with RSA key and secret", both, edTok},
		{"HS384 with secret", hs, sign(t, jwt.SigningMethodHS384, k.secret, claims)},
		{"HS512 with secret", both, sign(t, jwt.SigningMethodHS512, k.secret, claims)},
		{"RS512 with RSA key", rs, sign(t, jwt.SigningMethodRS512, k.rsa, claims)},
		{"PS256 with RSA key", rs, sign(t, jwt.SigningMethodPS256, k.rsa, claims)},
		{"unknown alg", both, hs256Raw(t, k.secret, `{"alg":"XY999","typ":"JWT"}`, `{"sub":"user-alg","exp":1900003600}`)},
		{"alg in other case", hs, hs256Raw(t, k.secret, `{"alg":"hs256"}`, `{"sub":"user-alg","exp":1900003600}`)},
	} {
		_, err := c.v.Verify(c.tok)
		if !errors.Is(err, ErrAlgorithm) {
			t.Errorf("%s: error = %v, want ErrAlgorithm", c.name, err)
			continue
		}
		wantErr(t, err, ErrAlgorithm, c.tok, "user-alg", "XY999")
	}

	// A header without alg, or with a non-string alg, is malformed.
	for _, h := range []string{`{"typ":"JWT"}`, `{"alg":256}`, `{"alg":null}`} {
		_, err := both.Verify(hs256Raw(t, k.secret, h, `{"sub":"u","exp":1900003600}`))
		wantErr(t, err, ErrMalformed)
	}
}

// TestKeyConfusion is the classic attack: the public key is public, so an
// attacker signs an HS256 token with the PEM bytes as HMAC secret, hoping the
// verifier uses "the key" with whatever algorithm the token names.
func TestKeyConfusion(t *testing.T) {
	k := newKeys(t)
	claims := jwt.MapClaims{"sub": "admin", "exp": exp(time.Hour)}
	for _, file := range []string{k.rsaPKIXFile, k.rsaPKCS1File, k.edFile} {
		pemBytes, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		block, _ := pem.Decode(pemBytes)
		for _, fake := range [][]byte{pemBytes, block.Bytes} {
			tok := sign(t, jwt.SigningMethodHS256, fake, claims)

			both := mustVerifier(t, Options{Secret: k.secret, PublicKeyFile: file})
			c, err := both.Verify(tok)
			if err == nil {
				t.Fatalf("%s: forged HS256 token accepted: %+v", filepath.Base(file), c)
			}
			wantErr(t, err, ErrSignature, tok, "admin")

			pubOnly := mustVerifier(t, Options{PublicKeyFile: file})
			_, err = pubOnly.Verify(tok)
			wantErr(t, err, ErrAlgorithm, tok, "admin")
		}
	}
}

func TestMalformed(t *testing.T) {
	k := newKeys(t)
	v := mustVerifier(t, Options{Secret: k.secret, PublicKeyFile: k.edFile})
	good := sign(t, jwt.SigningMethodHS256, k.secret, jwt.MapClaims{"sub": "u", "exp": exp(time.Hour)})
	parts := strings.Split(good, ".")
	long := sign(t, jwt.SigningMethodHS256, k.secret, jwt.MapClaims{
		"sub": "u", "exp": exp(time.Hour), "pad": strings.Repeat("x", 9<<10),
	})
	for name, tok := range map[string]string{
		"empty":             "",
		"abc":               "abc",
		"a.b.c":             "a.b.c",
		"dots":              "..",
		"two parts":         parts[0] + "." + parts[1],
		"four parts":        good + ".x",
		"9 KiB":             strings.Repeat("a", 9<<10),
		"9 KiB dotted":      strings.Repeat("a", 3<<10) + "." + strings.Repeat("b", 3<<10) + "." + strings.Repeat("c", 3<<10),
		"9 KiB signed":      long,
		"header not json":   b64("not json") + "." + parts[1] + "." + parts[2],
		"payload not json":  parts[0] + "." + b64("{") + "." + parts[2],
		"payload array":     parts[0] + "." + b64(`["sub"]`) + "." + parts[2],
		"bad base64":        parts[0] + ".@@@." + parts[2],
		"padded base64":     parts[0] + "." + parts[1] + "=." + parts[2],
		"bad signature b64": parts[0] + "." + parts[1] + ".!!",
		"spaces":            " " + good,
	} {
		_, err := v.Verify(tok)
		if !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: error = %v, want ErrMalformed", name, err)
			continue
		}
		wantErr(t, err, ErrMalformed, tok)
	}
	if len(good) > maxTokenLen || len(long) <= maxTokenLen {
		t.Fatal("test tokens have the wrong sizes")
	}
}
