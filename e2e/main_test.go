// Package e2e tests the built service from outside, as its users and
// operators meet it: TestMain builds the binary once, and every test starts
// it as a process of its own on a free port, then speaks to it over real
// TCP, TLS and SSE, reads its /metrics, /readyz and log, and signals it.
package e2e

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"go.uber.org/goleak"
)

// serviceBinary is the path of the service built by TestMain: the one
// value these tests share, set before any of them runs.
var serviceBinary string

// TestMain builds the service (with -race if the tests have it), runs the
// tests, and checks that they leave no goroutine behind. Run with
// PRESENCE_E2E_PEER set, the test binary is instead a namespaced peer
// (see peerMain), started by a test through ip netns exec.
func TestMain(m *testing.M) {
	if addr := os.Getenv(peerEnv); addr != "" {
		os.Exit(peerMain(addr))
	}
	flag.Parse()
	if f := flag.Lookup("test.list"); f != nil && f.Value.String() != "" {
		os.Exit(m.Run()) // listing needs no service
	}
	dir, err := os.MkdirTemp("", "presence-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	serviceBinary = filepath.Join(dir, "presence")
	args := []string{"build", "-o", serviceBinary}
	if raceEnabled {
		args = append(args, "-race")
	}
	build := exec.Command("go", append(args, ".")...)
	build.Dir = ".." // the module's root: package main
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go %v: %v\n%s", build.Args[1:], err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
			code = 1
		}
	}
	os.RemoveAll(dir)
	os.Exit(code)
}
