package auth

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The README shows token minters how to mint a token, in Go and in a shell
// (the shell one may live in a page under docs/). The tests below run those
// very snippets, read from the docs, so that an edit that breaks one fails
// here.
const (
	// mintHeading starts the line (a heading or a paragraph) that
	// introduces the snippets; each snippet is the first fenced block of its
	// language in that line's section.
	mintHeading = "Minting a token"
	// mintSecret is the secret the snippets read from PRESENCE_TOKEN_SECRET:
	// with spaces, as a shell snippet must quote it.
	mintSecret = "a shell-friendly secret of more than 32 bytes, with spaces"
)

// errNoSnippet is mintSnippet's error for a text without the snippet.
var errNoSnippet = errors.New("no snippet")

// mintSnippet returns the body of the first fenced block of lang ("go",
// "sh") in the section of doc that holds the line starting with mintHeading
// (after any '#'): from that line to the next heading outside a fenced
// block. It finds the snippet by its heading alone, so the rest of the text
// may move.
func mintSnippet(doc, lang string) (string, error) {
	lines := strings.Split(strings.ReplaceAll(doc, "\r\n", "\n"), "\n")
	start := -1
	for i, l := range lines {
		if strings.HasPrefix(strings.TrimLeft(l, "# "), mintHeading) {
			start = i
			break
		}
	}
	if start < 0 {
		return "", fmt.Errorf("%w: no line starts with %q", errNoSnippet, mintHeading)
	}
	for i := start + 1; i < len(lines); i++ {
		l := strings.TrimSpace(lines[i])
		if strings.HasPrefix(l, "#") {
			break // the section ends
		}
		if !strings.HasPrefix(l, "```") {
			continue
		}
		end := i + 1
		for end < len(lines) && strings.TrimSpace(lines[end]) != "```" {
			end++
		}
		if end == len(lines) {
			return "", fmt.Errorf("a block under %q is not closed", mintHeading)
		}
		if l == "```"+lang {
			body := strings.Join(lines[i+1:end], "\n")
			if strings.TrimSpace(body) == "" {
				return "", fmt.Errorf("the ```%s block under %q is empty", lang, mintHeading)
			}
			return body + "\n", nil
		}
		i = end // a block of another language: skip it whole
	}
	return "", fmt.Errorf("%w: no ```%s block under %q", errNoSnippet, lang, mintHeading)
}

// docSnippet is mintSnippet of the first of the README and the pages under
// docs/ (from this package's directory) that has one.
func docSnippet(t *testing.T, lang string) string {
	t.Helper()
	pages, err := filepath.Glob("../docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	var missing []string
	for _, file := range append([]string{"../README.md"}, pages...) {
		doc, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		s, err := mintSnippet(string(doc), lang)
		if errors.Is(err, errNoSnippet) {
			missing = append(missing, file+": "+err.Error())
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		return s
	}
	t.Fatalf("no %s snippet to mint a token:\n%s", lang, strings.Join(missing, "\n"))
	return ""
}

// checkMinted verifies a token minted by a snippet with mintSecret.
func checkMinted(t *testing.T, out []byte) {
	t.Helper()
	v := mustVerifier(t, Options{Secret: []byte(mintSecret), Now: time.Now})
	tok := strings.TrimSpace(string(out))
	c, err := v.Verify(tok)
	if err != nil {
		t.Fatalf("token %q: %v", tok, err)
	}
	if now := time.Now(); !c.Expires.After(now) || c.Expires.After(now.Add(24*time.Hour)) {
		t.Fatalf("token expires at %v: want within a day from now", c.Expires)
	}
	if other, err := NewVerifier(Options{Secret: []byte(strings.ToUpper(mintSecret))}); err != nil {
		t.Fatal(err)
	} else if _, err := other.Verify(tok); !errors.Is(err, ErrSignature) {
		t.Fatalf("token verified with another secret: %v", err)
	}
	t.Logf("claims: %+v", c)
}

// mintSnippet finds each block in the section of its heading line, and only
// there.
func TestMintSnippetFound(t *testing.T) {
	const readme = "# x\n\n```go\nnot this\n```\n\n" + mintHeading + " in Go:\n\nsome text\n\n```go\n" +
		"tok := 1\n```\n\nand in a shell:\n\n```yaml\n# not a heading\n```\n\n```sh\necho hi\n```\n\n## Next\n\n```js\nno\n```\n"
	const page = "# Tokens\n\n## " + mintHeading + "\n\n```sh\n# a comment\necho page\n```\n"
	for _, tc := range []struct{ doc, lang, want string }{
		{readme, "go", "tok := 1\n"},
		{readme, "sh", "echo hi\n"},
		{strings.ReplaceAll(readme, "\n", "\r\n"), "go", "tok := 1\n"},
		{page, "sh", "# a comment\necho page\n"},
	} {
		if got, err := mintSnippet(tc.doc, tc.lang); err != nil || got != tc.want {
			t.Errorf("%s block: %q, %v; want %q", tc.lang, got, err, tc.want)
		}
	}
	for _, tc := range []struct {
		doc, lang string
		missing   bool // errNoSnippet: try the next page
	}{
		{"# x\n\n```go\ntok := 1\n```\n", "go", true},            // no heading
		{mintHeading + ":\n\n```sh\necho hi\n```\n", "go", true}, // no go block under it
		{readme, "js", true}, // in the next section only
		{page, "go", true},   // none in the page
		{mintHeading + ":\n\n```go\ntok := 1\n", "go", false},               // not closed
		{mintHeading + ":\n\n```go\n\n```\n", "go", false},                  // empty
		{mintHeading + ":\n\n```sh\necho hi\n\n## x\n```go\n", "go", false}, // a block not closed
	} {
		got, err := mintSnippet(tc.doc, tc.lang)
		if err == nil || errors.Is(err, errNoSnippet) != tc.missing {
			t.Errorf("%q: found %q, %v; want an error, errNoSnippet %v", tc.doc, got, err, tc.missing)
		}
	}
}

// TestMintSnippet builds and runs the README's Go snippet in a module of its
// own (the repository's go.mod and go.sum, so the same jwt version, already
// in the module cache) and verifies the token it prints. The snippet must declare tok
// and err, as the README's does.
func TestMintSnippet(t *testing.T) {
	snippet := docSnippet(t, "go")
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to build the README's snippet: %v", err)
	}
	dir := t.TempDir()
	for _, name := range []string{"go.mod", "go.sum"} {
		data, err := os.ReadFile(filepath.Join("..", name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// The blank uses keep the imports legal whichever of them the snippet
	// needs.
	prog := "package main\n\nimport (\n\t\"fmt\"\n\t\"os\"\n\t\"time\"\n\n\t\"github.com/golang-jwt/jwt/v5\"\n)\n\n" +
		"var (\n\t_ = fmt.Print\n\t_ = os.Getenv\n\t_ = time.Now\n\t_ = jwt.New\n)\n\n" +
		"func main() {\n" + snippet +
		"\tif err != nil {\n\t\tfmt.Fprintln(os.Stderr, err)\n\t\tos.Exit(1)\n\t}\n\tfmt.Print(tok)\n}\n"
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(prog), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(goBin, "run", ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PRESENCE_TOKEN_SECRET="+mintSecret,
		"GOFLAGS=-mod=readonly", "GOWORK=off", "GOTOOLCHAIN=local")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go run of the README's snippet: %v\n%s\nprogram:\n%s", err, stderr.String(), prog)
	}
	checkMinted(t, out)
}

// TestMintShell runs the shell snippet given to token minters (openssl,
// base64, tr, printf, date), in the README or a page under docs/, and
// verifies its token.
func TestMintShell(t *testing.T) {
	snippet := docSnippet(t, "sh")
	for _, tool := range []string{"sh", "openssl", "base64", "tr", "date"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed: %v", tool, err)
		}
	}
	cmd := exec.Command("sh", "-c", snippet)
	cmd.Env = append(os.Environ(), "PRESENCE_TOKEN_SECRET="+mintSecret)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("the shell snippet: %v\n%s", err, stderr.String())
	}
	checkMinted(t, out)
}
