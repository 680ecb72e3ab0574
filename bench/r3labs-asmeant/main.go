// Command r3labs-asmeant measures github.com/r3labs/sse/v2 used the way its
// authors meant: sse.New() with AutoReplay off, one stream per room made
// with CreateStream (and one members stream per room), srv.ServeHTTP as the
// handler behind a real net/http server on loopback, and Publish for every
// count. It is the evidence for docs/decisions/0002-remove-r3labs-engine.md.
//
// The measured server runs as a fresh child process per scenario (this
// same binary with -serve), so its goroutines, CPU and memory are its own;
// the clients are real TCP connections from this process.
//
// Run it from the repository root (15,000 streams need 15,000 descriptors
// in each process; a full run takes about ten minutes on 2 cores):
//
//	go run ./bench/r3labs-asmeant
//	go run ./bench/r3labs-asmeant -only stall,disconnect -n 5000
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "r3labs-asmeant:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("r3labs-asmeant", flag.ContinueOnError)
	serve := fs.Bool("serve", false, "run as the measured server (started by the orchestrator)")
	deadline := fs.Duration("deadline", 0, "with -serve: per-write deadline (0: none)")
	replay := fs.Bool("replay", false, "with -serve: AutoReplay on")
	only := fs.String("only", "stall,disconnect,callbacks,shutdown,newcomer", "scenarios to run, comma-separated")
	readers := fs.Int("readers", 1000, "readers in the stalled-reader room")
	sizes := fs.String("n", "5000,15000", "room sizes for the mass disconnect")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *serve {
		return runServer(*deadline, *replay, out)
	}
	fmt.Fprintf(out, "r3labs/sse v2.10.0 as meant; %s, %d CPUs, %s; load average %s\n",
		time.Now().UTC().Format(time.RFC3339), runtime.NumCPU(), runtime.Version(), loadavg())
	o := &orchestrator{ctx: ctx, out: out, d: &dialer{}}
	for _, name := range strings.Split(*only, ",") {
		var err error
		switch name {
		case "stall":
			err = o.stall(*readers)
		case "disconnect":
			var ns []int
			for _, f := range strings.Split(*sizes, ",") {
				n, perr := strconv.Atoi(f)
				if perr != nil {
					return fmt.Errorf("-n: %w", perr)
				}
				ns = append(ns, n)
			}
			err = o.disconnect(ns)
		case "callbacks":
			err = o.callbacks()
		case "shutdown":
			err = o.shutdown()
		case "newcomer":
			err = o.newcomer()
		default:
			err = fmt.Errorf("unknown scenario %q", name)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	return nil
}

type orchestrator struct {
	ctx context.Context
	out io.Writer
	d   *dialer
}

func (o *orchestrator) printf(format string, a ...any) { fmt.Fprintf(o.out, format, a...) }

// child is one measured server process.
type child struct {
	cmd    *exec.Cmd
	addr   string // streams
	ctlURL string
}

func (o *orchestrator) start(args ...string) (*child, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find own binary: %w", err)
	}
	cmd := exec.CommandContext(o.ctx, exe, append([]string{"-serve"}, args...)...)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("child stdout: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start child: %w", err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return nil, fmt.Errorf("child address: %w", err)
	}
	f := strings.Fields(line)
	return &child{cmd: cmd, addr: f[0], ctlURL: "http://" + f[1]}, nil
}

func (c *child) stop() {
	_ = c.cmd.Process.Kill()
	_ = c.cmd.Wait()
}

func (c *child) ctl(path string) (string, error) {
	resp, err := http.Get(c.ctlURL + path)
	if err != nil {
		return "", fmt.Errorf("control %s: %w", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", fmt.Errorf("control %s: %w", path, err)
	}
	return string(b), nil
}

func (c *child) stats(path string) (stats, error) {
	var st stats
	body, err := c.ctl(path)
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		return st, fmt.Errorf("stats %q: %w", body, err)
	}
	return st, nil
}

// await polls the child's stats until ok holds or the timeout passes.
func (c *child) await(timeout time.Duration, ok func(stats) bool) (stats, error) {
	end := time.Now().Add(timeout)
	for {
		st, err := c.stats("/stats")
		if err != nil || ok(st) {
			return st, err
		}
		if time.Now().After(end) {
			return st, errors.New("timed out")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// room creates a stream on the child and opens n readers on it, and waits
// until r3labs has registered them all.
func (o *orchestrator) room(c *child, stream string, n int) ([]*reader, error) {
	if _, err := c.ctl("/create?stream=" + stream); err != nil {
		return nil, err
	}
	rs, err := o.d.openMany(c.addr, "/stream?stream="+stream, n)
	if err != nil {
		return nil, err
	}
	if _, err := c.await(30*time.Second, func(s stats) bool { return s.Subs >= int64(n) }); err != nil {
		closeAll(rs)
		return nil, fmt.Errorf("%d readers subscribed: %w", n, err)
	}
	return rs, nil
}

// awaitReaders waits until every reader has event id seq, and says how long
// that took, or false after the timeout.
func awaitReaders(rs []*reader, seq int64, timeout time.Duration) (time.Duration, bool) {
	t := time.Now()
	for minLastID(rs) < seq {
		if time.Since(t) > timeout {
			return time.Since(t), false
		}
		time.Sleep(time.Millisecond)
	}
	return time.Since(t), true
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Join(strings.Fields(string(b))[:3], " ")
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/1e6) }

func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, int(p*float64(len(s))))]
}
