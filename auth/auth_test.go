package auth

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

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

// TestMintSnippet is the Go snippet given to token minters.
func TestMintSnippet(t *testing.T) {
	secret := "0123456789abcdef0123456789abcdef"
	t.Setenv("PRESENCE_TOKEN_SECRET", secret)

	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub": "u123", "name": "Ada", "rooms": []string{"docs-*"},
		"exp": time.Now().Add(time.Hour).Unix(),
	}).SignedString([]byte(os.Getenv("PRESENCE_TOKEN_SECRET")))
	if err != nil {
		t.Fatal(err)
	}

	v, err := NewVerifier(Options{Secret: []byte(secret)})
	if err != nil {
		t.Fatal(err)
	}
	c, err := v.Verify(tok)
	if err != nil {
		t.Fatal(err)
	}
	if c.Subject != "u123" || c.Name != "Ada" || !c.Allows("docs-intro") || c.Allows("blog") {
		t.Fatalf("claims = %+v", c)
	}
}

// TestMintShell runs the shell one-liner given to token minters (openssl,
// base64, tr, printf, date) and checks its token.
func TestMintShell(t *testing.T) {
	for _, tool := range []string{"sh", "openssl", "base64", "tr", "date"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed: %v", tool, err)
		}
	}
	const oneLiner = `b64(){ base64 | tr -d '=\n' | tr '+/' '-_'; }; h=$(printf '{"alg":"HS256","typ":"JWT"}' | b64); p=$(printf '{"sub":"%s","name":"%s","exp":%s}' "$SUB" "$NAME" "$(($(date +%s) + 3600))" | b64); s=$(printf '%s' "$h.$p" | openssl dgst -sha256 -hmac "$PRESENCE_TOKEN_SECRET" -binary | b64); echo "$h.$p.$s"`
	secret := "a shell-friendly secret of more than 32 bytes, with spaces"
	cmd := exec.Command("sh", "-c", oneLiner)
	cmd.Env = append(os.Environ(), "PRESENCE_TOKEN_SECRET="+secret, "SUB=user-42", "NAME=Grace Hopper")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("one-liner: %v", err)
	}
	v, err := NewVerifier(Options{Secret: []byte(secret)})
	if err != nil {
		t.Fatal(err)
	}
	c, err := v.Verify(strings.TrimSpace(string(out)))
	if err != nil {
		t.Fatalf("token %q: %v", out, err)
	}
	if c.Subject != "user-42" || c.Name != "Grace Hopper" || c.Rooms != nil {
		t.Fatalf("claims = %+v", c)
	}
	if d := time.Until(c.Expires); d < 59*time.Minute || d > 61*time.Minute {
		t.Fatalf("expires in %v, want an hour", d)
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

func TestClaimsRules(t *testing.T) {
	k := newKeys(t)
	v := mustVerifier(t, Options{Secret: k.secret})
	e := jsonNum(exp(time.Hour))
	header := `{"alg":"HS256","typ":"JWT"}`
	bad := map[string]string{
		"missing sub":      `{"exp":` + e + `}`,
		"null sub":         `{"sub":null,"exp":` + e + `}`,
		"empty sub":        `{"sub":"","exp":` + e + `}`,
		"number sub":       `{"sub":42,"exp":` + e + `}`,
		"sub too long":     `{"sub":"` + strings.Repeat("s", maxSubjectLen+1) + `","exp":` + e + `}`,
		"sub with newline": `{"sub":"a\nb","exp":` + e + `}`,
		"sub with NUL":     `{"sub":"a\u0000b","exp":` + e + `}`,
		"sub with DEL":     `{"sub":"a\u007fb","exp":` + e + `}`,
		"sub with C1":      `{"sub":"a\u0085b","exp":` + e + `}`,
		"missing exp":      `{"sub":"u"}`,
		"null exp":         `{"sub":"u","exp":null}`,
		"string exp":       `{"sub":"u","exp":"tomorrow"}`,
		"string nbf":       `{"sub":"u","exp":` + e + `,"nbf":"now"}`,
		"rooms string":     `{"sub":"u","exp":` + e + `,"rooms":"docs-*"}`,
		"rooms number":     `{"sub":"u","exp":` + e + `,"rooms":5}`,
		"rooms object":     `{"sub":"u","exp":` + e + `,"rooms":{"docs":true}}`,
		"rooms null":       `{"sub":"u","exp":` + e + `,"rooms":null}`,
		"rooms of numbers": `{"sub":"u","exp":` + e + `,"rooms":[1,2]}`,
		"rooms mixed":      `{"sub":"u","exp":` + e + `,"rooms":["docs-*",null]}`,
		"rooms nested":     `{"sub":"u","exp":` + e + `,"rooms":[["docs-*"]]}`,
		"rooms bad glob":   `{"sub":"u","exp":` + e + `,"rooms":["docs-*","["]}`,
		"rooms [!x] glob":  `{"sub":"u","exp":` + e + `,"rooms":["docs-*","staff-[!x]"]}`,
		"name number":      `{"sub":"u","exp":` + e + `,"name":7}`,
		"name list":        `{"sub":"u","exp":` + e + `,"name":["a"]}`,
	}
	for name, payload := range bad {
		tok := hs256Raw(t, k.secret, header, payload)
		_, err := v.Verify(tok)
		if !errors.Is(err, ErrClaims) {
			t.Errorf("%s: error = %v, want ErrClaims", name, err)
			continue
		}
		wantErr(t, err, ErrClaims, tok, "tomorrow", "docs-*", `["`)
	}

	good := map[string]Claims{
		`{"sub":"` + strings.Repeat("s", maxSubjectLen) + `","exp":` + e + `}`:   {Subject: strings.Repeat("s", maxSubjectLen)},
		`{"sub":"Zoë 🙂 \u202e","exp":` + e + `}`:                                 {Subject: "Zoë 🙂 \u202e"},
		`{"sub":"u","exp":` + e + `,"name":null}`:                                {Subject: "u"},
		`{"sub":"u","exp":` + e + `,"name":""}`:                                  {Subject: "u"},
		`{"sub":"u","exp":` + e + `,"rooms":[]}`:                                 {Subject: "u", Rooms: []string{}},
		`{"sub":"u","exp":` + e + `,"rooms":["a","b*"]}`:                         {Subject: "u", Rooms: []string{"a", "b*"}},
		`{"sub":"u","exp":` + e + `,"aud":["x"],"iss":"y","jti":"z","extra":{}}`: {Subject: "u"},
		`{"sub":"u","exp":` + e + `.75}`:                                         {Subject: "u"},
	}
	for payload, want := range good {
		c, err := v.Verify(hs256Raw(t, k.secret, header, payload))
		if err != nil {
			t.Errorf("%s: %v", payload, err)
			continue
		}
		// jwt keeps exp to the second (jwt.TimePrecision): .75 is dropped.
		want.Expires = testNow.Add(time.Hour)
		if !reflect.DeepEqual(c, want) {
			t.Errorf("%s: claims = %+v, want %+v", payload, c, want)
		}
	}

	// An empty rooms list opens nothing; an absent one opens everything.
	c, err := v.Verify(hs256Raw(t, k.secret, header, `{"sub":"u","exp":`+e+`,"rooms":[]}`))
	if err != nil || c.Allows("lobby") || c.Allows("") {
		t.Fatalf("empty rooms: %+v, %v", c, err)
	}
}

func TestNameCleaning(t *testing.T) {
	k := newKeys(t)
	v := mustVerifier(t, Options{Secret: k.secret})
	long := strings.Repeat("é", 150)
	cases := map[string]string{
		"Ada Lovelace":                           "Ada Lovelace",
		"  Ada  ":                                "Ada",
		"\tAda\n":                                "Ada",
		"A\x00d\x1ba\x7f\u0085\u009f":            "Ada",
		" \u00a0Grace\u3000":                     "Grace",
		"Zoë 🙂":                                  "Zoë 🙂",
		"\x01\x02 \x03":                          "",
		long:                                     strings.Repeat("é", maxNameRunes),
		strings.Repeat("a", 99) + " bcd":         strings.Repeat("a", 99),
		strings.Repeat("\n", 200) + "Bob":        "Bob",
		strings.Repeat("🙂", 101):                 strings.Repeat("🙂", 100),
		"  " + strings.Repeat("x", 100) + "yz  ": strings.Repeat("x", 100),
	}
	for in, want := range cases {
		c, err := v.Verify(sign(t, jwt.SigningMethodHS256, k.secret, jwt.MapClaims{"sub": "u", "name": in, "exp": exp(time.Hour)}))
		if err != nil {
			t.Fatalf("name %q: %v", in, err)
		}
		if c.Name != want {
			t.Errorf("name %q: got %q, want %q", in, c.Name, want)
		}
		if n := utf8.RuneCountInString(c.Name); n > maxNameRunes {
			t.Errorf("name %q: %d runes", in, n)
		}
	}
}

func TestMatchRoom(t *testing.T) {
	cases := []struct {
		pattern, room string
		want          bool
	}{
		{"docs-*", "docs-intro", true},
		{"docs-*", "docs-", true},
		{"docs-*", "blog", false},
		{"docs-*", "my-docs-intro", false},
		{"team-?", "team-a", true},
		{"team-?", "team-", false},
		{"team-?", "team-ab", false},
		{"[ab]*", "alpha", true},
		{"[ab]*", "beta", true},
		{"[ab]*", "gamma", false},
		{"[a-c]?", "c1", true},
		{"[^a]*", "apple", false},
		{"[^a]*", "pear", true},
		{"*", "anything.at_all-1", true},
		{"*", "", true},
		{"lobby", "lobby", true},
		{"lobby", "Lobby", false},
		{"lobby", "lobby2", false},
		{"*-*", "a-b", true},
		{"a\\*", "a*", true},
		{"a\\*", "ab", false},
		{"", "", true},
		{"", "lobby", false},
		// Invalid patterns match nothing, not even what their valid prefix would.
		{"[", "[", false},
		{"[", "", false},
		{"a[", "a", false},
		{"*[", "x", false},
		{"docs-*[", "docs-x", false},
		{"[]", "]", false},
		{"[a-", "a", false},
		{"\\", "\\", false},
		// "[!x]" is not negation to path.Match (it is a class of '!' and
		// 'x'): it matches nothing, rather than open staff-x and close
		// staff-a. "[^x]" is negation.
		{"staff-[!x]", "staff-x", false},
		{"staff-[!x]", "staff-a", false},
		{"staff-[!x]", "staff-!", false},
		{"*[!a-c]*", "xdx", false},
		{"staff-[^x]", "staff-a", true},
		{"staff-[^x]", "staff-x", false},
		{"[a!]", "a", true},    // '!' not first is a literal, as in a shell
		{"[^!]", "a", true},    // so is '!' after '^'
		{"\\[!x]", "a", false}, // an escaped '[' opens no class
	}
	for _, c := range cases {
		if got := MatchRoom(c.pattern, c.room); got != c.want {
			t.Errorf("MatchRoom(%q, %q) = %v, want %v", c.pattern, c.room, got, c.want)
		}
		if got := (Claims{Rooms: []string{"zzz-never", c.pattern}}).Allows(c.room); got != c.want {
			t.Errorf("Allows(%q) with rooms %q = %v, want %v", c.room, c.pattern, got, c.want)
		}
	}

	if !(Claims{}).Allows("blog") {
		t.Error("nil Rooms must allow every room")
	}
	if (Claims{Rooms: []string{}}).Allows("blog") {
		t.Error("empty Rooms must allow no room")
	}
	if (Claims{Rooms: []string{"docs-*", "team-?"}}).Allows("blog") {
		t.Error("blog must not match docs-* or team-?")
	}
	if !(Claims{Rooms: []string{"docs-*", "team-?"}}).Allows("team-x") {
		t.Error("team-x must match team-?")
	}
}

func TestValidatePattern(t *testing.T) {
	for _, p := range []string{"", "*", "**", "lobby", "docs-*", "team-?", "[ab]*", "[^a]", "[a-z]*", "a\\*", "[^x]", "[a!]", "[^!]", "\\[!x]", "[\\!]"} {
		if err := ValidatePattern(p); err != nil {
			t.Errorf("ValidatePattern(%q) = %v, want nil", p, err)
		}
	}
	for _, p := range []string{"[", "a[", "*[", "docs-*[", "[]", "[a-", "[z-", "\\", "a\\", "[\\", "x*y*[", "staff-[!x]", "[!]", "*[!a-c]*", "[^a][!b]", "[!x"} {
		if err := ValidatePattern(p); err == nil {
			t.Errorf("ValidatePattern(%q) = nil, want an error", p)
		}
	}
}

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
