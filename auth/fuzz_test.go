package auth

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"
)

// TestErrorsDoNotLeak checks every kind of rejection for token contents in
// the error message.
func TestErrorsDoNotLeak(t *testing.T) {
	k := newKeys(t)
	v := mustVerifier(t, Options{Secret: k.secret, PublicKeyFile: k.rsaPKIXFile})
	const sub, name = "sub-LEAK-7Qx9", "Name-LEAK-Zk3"
	claims := func(extra jwt.MapClaims) jwt.MapClaims {
		c := jwt.MapClaims{"sub": sub, "name": name, "exp": exp(time.Hour), "rooms": []string{"room-LEAK-*"}}
		for key, val := range extra {
			c[key] = val
		}
		return c
	}
	toks := []string{
		sign(t, jwt.SigningMethodHS256, k.secret, claims(jwt.MapClaims{"exp": exp(-time.Hour)})),
		sign(t, jwt.SigningMethodHS256, []byte("wrong wrong wrong wrong wrong wrong"), claims(nil)),
		sign(t, jwt.SigningMethodRS256, k.rsaOther, claims(nil)),
		sign(t, jwt.SigningMethodEdDSA, k.ed, claims(nil)),
		sign(t, jwt.SigningMethodHS256, k.secret, claims(jwt.MapClaims{"rooms": "room-LEAK-*"})),
		sign(t, jwt.SigningMethodHS256, k.secret, claims(jwt.MapClaims{"rooms": []string{"room-LEAK-["}})),
		sign(t, jwt.SigningMethodHS256, k.secret, claims(jwt.MapClaims{"sub": sub + "\n"})),
		sign(t, jwt.SigningMethodHS256, k.secret, claims(jwt.MapClaims{"exp": "exp-LEAK"})),
		sign(t, jwt.SigningMethodHS256, k.secret, claims(jwt.MapClaims{"nbf": exp(time.Minute)})),
		hs256Raw(t, k.secret, `{"alg":"alg-LEAK"}`, `{"sub":"`+sub+`"}`),
		unsigned(`{"sub":"` + sub + `","exp":1900003600}`),
		b64(`{"alg":"HS256"}`) + "." + b64(`{"sub":"`+sub+`", broken`) + ".sig",
		b64(`{"alg":"HS256", "x": "hdr-LEAK`) + "." + b64(`{"sub":"`+sub+`"}`) + ".sig",
	}
	seen := map[error]bool{}
	for _, tok := range toks {
		_, err := v.Verify(tok)
		if err == nil {
			t.Fatalf("token %d accepted", len(seen))
		}
		msg := err.Error()
		for _, leak := range append([]string{tok, sub, name, "LEAK"}, strings.Split(tok, ".")...) {
			if leak != "" && strings.Contains(msg, leak) {
				t.Errorf("error %q leaks %q", msg, leak)
			}
		}
		for _, e := range allErrors {
			if errors.Is(err, e) {
				seen[e] = true
			}
		}
	}
	if len(seen) != len(allErrors) {
		t.Errorf("only %d of the %d errors were exercised", len(seen), len(allErrors))
	}
}

// TestConcurrent runs Verify from many goroutines at once (for -race).
func TestConcurrent(t *testing.T) {
	k := newKeys(t)
	v := mustVerifier(t, Options{Secret: k.secret, PublicKeyFile: k.edFile})
	good := []string{
		sign(t, jwt.SigningMethodHS256, k.secret, jwt.MapClaims{"sub": "a", "exp": exp(time.Hour)}),
		sign(t, jwt.SigningMethodEdDSA, k.ed, jwt.MapClaims{"sub": "b", "exp": exp(time.Hour)}),
	}
	expired := sign(t, jwt.SigningMethodHS256, k.secret, jwt.MapClaims{"sub": "c", "exp": exp(-time.Hour)})
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 50 {
				if _, err := v.Verify(good[(i+j)%2]); err != nil {
					t.Error(err)
					return
				}
				if _, err := v.Verify(expired); !errors.Is(err, ErrExpired) {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// FuzzVerify checks that Verify never panics, that anything it rejects is
// one of the five errors with a message free of the input, and that what it
// accepts obeys the Claims rules. Its seeds run in every go test.
func FuzzVerify(f *testing.F) {
	k := newKeys(f)
	claims := jwt.MapClaims{"sub": "u-1", "name": " Ada\x00 ", "rooms": []string{"docs-*"}, "exp": exp(time.Hour)}
	seeds := []string{
		sign(f, jwt.SigningMethodHS256, k.secret, claims),
		sign(f, jwt.SigningMethodEdDSA, k.ed, claims),
		sign(f, jwt.SigningMethodRS256, k.rsa, claims),
		sign(f, jwt.SigningMethodHS256, k.secret, jwt.MapClaims{"sub": "u", "exp": exp(-time.Hour)}),
		sign(f, jwt.SigningMethodHS256, k.secret, jwt.MapClaims{"sub": "u", "exp": exp(time.Hour), "rooms": 3}),
		sign(f, jwt.SigningMethodHS256, k.secret, jwt.MapClaims{"exp": exp(time.Hour)}),
		hs256Raw(f, k.secret, `{"alg":"HS256"}`, `{"sub":"u","exp":1e300,"nbf":-1e300,"iat":null}`),
		hs256Raw(f, k.secret, `{"alg":"HS256"}`, `{"sub":"u","exp":1900003600,"rooms":["[","*"]}`),
		unsigned(`{"sub":"u","exp":1900003600}`),
		"", "abc", "a.b.c", "..", "...", "a.b.c.d", "\x00.\xff.\n",
		b64(`{"alg":"HS256"}`) + "." + b64(`{}`) + ".",
		b64(`{"alg":"EdDSA"}`) + "." + b64(`{"sub":"u","exp":1900003600}`) + "." + b64("short"),
		b64(`{"alg":["HS256"]}`) + "." + b64(`{"sub":"u"}`) + ".",
		strings.Repeat("a", maxTokenLen+1),
	}
	for _, s := range seeds {
		f.Add(s)
	}
	v := mustVerifier(f, Options{Secret: k.secret, PublicKeyFile: k.edFile, Leeway: time.Second})
	f.Fuzz(func(t *testing.T, tok string) {
		c, err := v.Verify(tok)
		if err != nil {
			if c.Subject != "" || c.Name != "" || c.Rooms != nil || !c.Expires.IsZero() {
				t.Fatalf("error %v with non-zero claims %+v", err, c)
			}
			n := 0
			for _, e := range allErrors {
				if errors.Is(err, e) {
					n++
				}
			}
			if n != 1 {
				t.Fatalf("error %v is %d of the five errors, want 1", err, n)
			}
			if len(tok) >= 12 && strings.Contains(err.Error(), tok) {
				t.Fatalf("error %q contains the token", err)
			}
			return
		}
		if c.Subject == "" || len(c.Subject) > maxSubjectLen || strings.IndexFunc(c.Subject, unicode.IsControl) >= 0 {
			t.Fatalf("accepted bad sub %q", c.Subject)
		}
		if utf8.RuneCountInString(c.Name) > maxNameRunes || strings.IndexFunc(c.Name, unicode.IsControl) >= 0 || strings.TrimSpace(c.Name) != c.Name {
			t.Fatalf("accepted unclean name %q", c.Name)
		}
		for _, p := range c.Rooms {
			if ValidatePattern(p) != nil {
				t.Fatalf("accepted bad pattern %q", p)
			}
		}
		if !testNow.Before(c.Expires.Add(time.Second)) {
			t.Fatalf("accepted expired token (exp %v)", c.Expires)
		}
	})
}
