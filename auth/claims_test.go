package auth

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"
)

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
