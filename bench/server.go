package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// moduleRoot returns the directory holding the main module's go.mod.
func moduleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("not inside a Go module; run from the repository")
	}
	return filepath.Dir(gomod), nil
}

// build runs go build -o out pkg in dir.
func build(ctx context.Context, dir, out, pkg string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, pkg)
	cmd.Dir = dir
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %w\n%s", pkg, err, b)
	}
	return nil
}

// freePort asks the kernel for an unused 127.0.0.1 port.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

type server struct {
	cmd     *exec.Cmd
	addr    string
	killed  bool // killed on purpose; its absence is no error
	logPath string
	exited  chan struct{}
	waitErr error
}

// startServer starts bin with args (args gets "--addr 127.0.0.1:PORT"
// prepended) and waits until GET /healthz answers 200.
func startServer(ctx context.Context, bin string, extra []string, logPath string, env ...string) (*server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	s, err := startProcess(bin, append([]string{"--addr", addr}, extra...), logPath, env...)
	if err != nil {
		return nil, err
	}
	s.addr = addr
	if err := s.waitHealthy(ctx, 20*time.Second); err != nil {
		s.stop()
		return nil, fmt.Errorf("%w\n--- server log tail ---\n%s", err, s.logTail(2000))
	}
	return s, nil
}

// startProcess starts bin with args, its output going to logPath.
func startProcess(bin string, args []string, logPath string, env ...string) (*server, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Own process group: a terminal ^C reaches only us, and we stop it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &server{cmd: cmd, logPath: logPath, exited: make(chan struct{})}
	go func() { s.waitErr = cmd.Wait(); close(s.exited) }()
	progress("started %s (pid %d): %s", filepath.Base(bin), cmd.Process.Pid, strings.Join(args, " "))
	return s, nil
}

func (s *server) waitHealthy(ctx context.Context, limit time.Duration) error {
	hc := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		select {
		case <-s.exited:
			return fmt.Errorf("server exited before healthy: %v", s.waitErr)
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		resp, err := hc.Get("http://" + s.addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("server not healthy within %v", limit)
}

// metric returns the value of an unlabelled metric from GET /metrics, or 0.
func (s *server) metric(ctx context.Context, name string) float64 {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+s.addr+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	return 0
}

// alive reports whether the process is still running.
func (s *server) alive() bool {
	select {
	case <-s.exited:
		return false
	default:
		return true
	}
}

// stop kills the server and waits for it (bounded).
func (s *server) stop() {
	if s.alive() {
		s.cmd.Process.Signal(syscall.SIGKILL)
	}
	select {
	case <-s.exited:
	case <-time.After(10 * time.Second):
		progress("warning: server pid %d did not exit after SIGKILL", s.cmd.Process.Pid)
	}
}

func (s *server) logTail(n int) string {
	b, _ := os.ReadFile(s.logPath)
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// loadAvg returns the 1, 5 and 15 minute load averages.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// sourceID identifies the presence sources that were built: the git HEAD
// (if any) and a hash of go.mod, go.sum, static/ and the non-test .go files
// outside bench/, docs/ and dot-directories, so that two reports can tell
// whether they measured the same code (the work tree may differ from HEAD).
func sourceID(ctx context.Context, root string) string {
	head := "no-git"
	if out, err := exec.CommandContext(ctx, "git", "-C", root, "rev-parse", "--short", "HEAD").Output(); err == nil {
		head = "git " + strings.TrimSpace(string(out))
	}
	h := sha256.New()
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if d.IsDir() {
			if rel != "." && (strings.HasPrefix(d.Name(), ".") || rel == "bench" || rel == "docs") {
				return filepath.SkipDir
			}
			return nil
		}
		src := strings.HasSuffix(p, ".go") && !strings.HasSuffix(p, "_test.go")
		src = src || rel == "go.mod" || rel == "go.sum" || strings.HasPrefix(rel, "static"+string(filepath.Separator))
		if !d.Type().IsRegular() || !src {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "%s\x00%d\x00", rel, len(b))
		h.Write(b)
		return nil
	})
	if err != nil {
		return head + ", sources unreadable"
	}
	return fmt.Sprintf("%s, sources sha256 %x", head, h.Sum(nil)[:6])
}
