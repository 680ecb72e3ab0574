package auth

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The README shows token minters how to mint a token, in Go and in a shell.
// The tests below run those very snippets, read from the README, so that an
// edit that breaks one fails here.
const (
	// readmePath is the README, from this package's directory.
	readmePath = "../README.md"
	// mintHeading starts the README line that introduces the snippets; each
	// snippet is the first fenced block of its language after that line.
	mintHeading = "Minting a token"
	// mintSecret is the secret the snippets read from PRESENCE_TOKEN_SECRET:
	// with spaces, as a shell snippet must quote it.
	mintSecret = "a shell-friendly secret of more than 32 bytes, with spaces"
)

// mintSnippet returns the body of the first fenced block of lang ("go",
// "sh") after the line of readme that starts with mintHeading. It finds the
// snippet by its heading alone, so the rest of the README may move.
func mintSnippet(readme, lang string) (string, error) {
	lines := strings.Split(strings.ReplaceAll(readme, "\r\n", "\n"), "\n")
	start := -1
	for i, l := range lines {
		if strings.HasPrefix(l, mintHeading) {
			start = i
			break
		}
	}
	if start < 0 {
		return "", errors.New("no line starts with " + mintHeading)
	}
	for i := start + 1; i < len(lines); i++ {
		if strings.TrimSpace(lines[i]) != "```"+lang {
			continue
		}
		for j := i + 1; j < len(lines); j++ {
			if strings.TrimSpace(lines[j]) == "```" {
				body := strings.Join(lines[i+1:j], "\n")
				if strings.TrimSpace(body) == "" {
					return "", errors.New("the ```" + lang + " block after " + mintHeading + " is empty")
				}
				return body + "\n", nil
			}
		}
		return "", errors.New("the ```" + lang + " block after " + mintHeading + " is not closed")
	}
	return "", errors.New("no ```" + lang + " block after the line " + mintHeading)
}

// readmeSnippet is mintSnippet of the repository's README.
func readmeSnippet(t *testing.T, lang string) string {
	t.Helper()
	readme, err := os.ReadFile(readmePath)
	if err != nil {
		t.Fatal(err)
	}
	s, err := mintSnippet(string(readme), lang)
	if err != nil {
		t.Fatalf("%s: %v", readmePath, err)
	}
	return s
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

func TestMintSnippetFound(t *testing.T) {
	const readme = "# x\n\n```go\nnot this\n```\n\n" + mintHeading + " in Go:\n\nsome text\n\n```go\n" +
		"tok := 1\n```\n\nand in a shell:\n\n```sh\necho hi\n```\n"
	for _, tc := range []struct{ readme, lang, want string }{
		{readme, "go", "tok := 1\n"},
		{readme, "sh", "echo hi\n"},
		{strings.ReplaceAll(readme, "\n", "\r\n"), "go", "tok := 1\n"},
	} {
		if got, err := mintSnippet(tc.readme, tc.lang); err != nil || got != tc.want {
			t.Errorf("%s block: %q, %v; want %q", tc.lang, got, err, tc.want)
		}
	}
	for _, bad := range []string{
		"# x\n\n```go\ntok := 1\n```\n",            // no heading
		mintHeading + ":\n\n```sh\necho hi\n```\n", // no go block after it
		mintHeading + ":\n\n```go\ntok := 1\n",     // not closed
		mintHeading + ":\n\n```go\n\n```\n",        // empty
	} {
		if got, err := mintSnippet(bad, "go"); err == nil {
			t.Errorf("%q: found %q, want an error", bad, got)
		}
	}
}

// TestMintSnippet builds and runs the README's Go snippet in a module of its
// own (the repository's go.mod and go.sum, so the same jwt version, with no
// network) and verifies the token it prints. The snippet must declare tok
// and err, as the README's does.
func TestMintSnippet(t *testing.T) {
	snippet := readmeSnippet(t, "go")
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
		"GOFLAGS=-mod=readonly", "GOPROXY=off", "GOWORK=off", "GOTOOLCHAIN=local")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go run of the README's snippet: %v\n%s\nprogram:\n%s", err, stderr.String(), prog)
	}
	checkMinted(t, out)
}

// TestMintShell runs the README's shell snippet (openssl, base64, tr,
// printf, date) and verifies its token.
func TestMintShell(t *testing.T) {
	snippet := readmeSnippet(t, "sh")
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
		t.Fatalf("the README's shell snippet: %v\n%s", err, stderr.String())
	}
	checkMinted(t, out)
}
