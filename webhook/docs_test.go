package webhook

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// The docs show receivers how to check a signature, in Go and in a shell
// line. These tests run those very snippets, read from docs/webhooks.md,
// against bodies this package signs, so that an edit that breaks one
// fails here.

// verifySection is the part of docs/webhooks.md under "## Verifying a
// signature".
func verifySection(t *testing.T) string {
	t.Helper()
	doc, err := os.ReadFile("../docs/webhooks.md")
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(doc), "\n## Verifying a signature\n")
	if !ok {
		t.Fatal(`docs/webhooks.md has no "## Verifying a signature"`)
	}
	section, _, _ := strings.Cut(after, "\n## ")
	return section
}

// block returns the first fenced block of lang in text, a section of a doc.
func block(t *testing.T, text, lang string) string {
	t.Helper()
	m := regexp.MustCompile("(?s)```" + lang + "\n(.*?)```").FindStringSubmatch(text)
	if m == nil {
		t.Fatalf("no ```%s block in the section", lang)
	}
	return m[1]
}

func TestShellVerifySnippet(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("no openssl")
	}
	line := block(t, verifySection(t), "sh")
	dir := t.TempDir()
	body := []byte(`{"id":"a-1-2","time_ms":1764590400123,"events":[{"name":"room_occupied","room":"r","seq":7}]}`)
	if err := os.WriteFile(filepath.Join(dir, "body.json"), body, 0o644); err != nil {
		t.Fatal(err)
	}
	const secret = "a secret, with spaces"
	for _, tc := range []struct {
		sig  string
		want string
	}{{Sign(body, secret), "ok\n"}, {Sign(body, secret+"!"), ""}} {
		cmd := exec.Command("sh", "-c", line)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "SECRET="+secret, "SIG="+tc.sig)
		out, _ := cmd.Output() // a refused signature exits 1
		if string(out) != tc.want {
			t.Errorf("the docs' shell line with signature %s printed %q, want %q", tc.sig, out, tc.want)
		}
	}
}

// TestGoVerifySnippet builds the docs' verify function in a program of its
// own and checks it against Sign.
func TestGoVerifySnippet(t *testing.T) {
	t.Parallel()
	fn := block(t, verifySection(t), "go")
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to build the docs' snippet: %v", err)
	}
	dir := t.TempDir()
	prog := "package main\n\nimport (\n\t\"crypto/hmac\"\n\t\"crypto/sha256\"\n\t\"encoding/hex\"\n\t\"fmt\"\n\t\"os\"\n)\n\n" + fn +
		"\nfunc main() { fmt.Print(verify([]byte(os.Args[1]), os.Args[2], os.Args[3])) }\n"
	for name, data := range map[string]string{"main.go": prog, "go.mod": "module snippet\n\ngo 1.22\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	build := exec.Command(goBin, "build", "-o", "snippet", ".")
	build.Dir = dir
	build.Env = append(os.Environ(), "GOWORK=off", "GOTOOLCHAIN=local", "GOFLAGS=-mod=mod")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the docs' verify: %v\n%s\nprogram:\n%s", err, out, prog)
	}
	body := `{"id":"x","time_ms":1,"events":[]}`
	for _, tc := range []struct {
		sig, want string
	}{{Sign([]byte(body), "k"), "true"}, {Sign([]byte(body), "other"), "false"}, {"", "false"}} {
		out, err := exec.Command(filepath.Join(dir, "snippet"), body, tc.sig, "k").Output()
		if err != nil || string(out) != tc.want {
			t.Errorf("the docs' verify with %q: %q %v, want %s", tc.sig, out, err, tc.want)
		}
	}
}

// TestReadmeReceiverBuilds builds the README's receiver, so that the few
// lines a reader copies compile.
func TestReadmeReceiverBuilds(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), "\n## Webhooks\n")
	if !ok {
		t.Fatal(`the README has no "## Webhooks"`)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	handler := block(t, section, "go")
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to build the README's receiver: %v", err)
	}
	dir := t.TempDir()
	prog := "package main\n\nimport (\n\t\"crypto/hmac\"\n\t\"crypto/sha256\"\n\t\"encoding/hex\"\n\t\"encoding/json\"\n\t\"io\"\n\t\"net/http\"\n)\n\n" +
		"var secret = \"s\"\n\nfunc main() {\n" + handler + "}\n"
	for name, data := range map[string]string{"main.go": prog, "go.mod": "module receiver\n\ngo 1.22\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	build := exec.Command(goBin, "vet", ".")
	build.Dir = dir
	build.Env = append(os.Environ(), "GOWORK=off", "GOTOOLCHAIN=local", "GOFLAGS=-mod=mod")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("the README's receiver: %v\n%s\nprogram:\n%s", err, out, prog)
	}
}
