package auth

import (
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

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
