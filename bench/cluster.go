package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/presence/presence/internal/resp"
)

// startTargets starts what a run measures: one server, or for a cluster
// (cfg.nodes > 1) a redis-server and cfg.nodes presence nodes sharing it.
func startTargets(ctx context.Context, cfg runConfig) ([]*server, *redisServer, error) {
	if cfg.nodes <= 1 {
		srv, err := startServer(ctx, cfg.bin, cfg.args, cfg.logPath)
		if err != nil {
			return nil, nil, err
		}
		return []*server{srv}, nil, nil
	}
	rds, err := startRedis(ctx, cfg.redis, cfg.tmp)
	if err != nil {
		return nil, nil, err
	}
	var srvs []*server
	for i := range cfg.nodes {
		args := append([]string{"--redis-url", rds.url(), "--node-id", fmt.Sprintf("node%d", i+1)}, cfg.args...)
		srv, err := startServer(ctx, cfg.bin, args, fmt.Sprintf("%s.node%d", cfg.logPath, i+1), cfg.nodeEnv...)
		if err != nil {
			for _, s := range srvs {
				s.stop()
			}
			rds.stop()
			return nil, nil, err
		}
		srvs = append(srvs, srv)
	}
	return srvs, rds, nil
}

// redisServer is a redis-server started for one run: a free port, no
// persistence, killed at the end.
type redisServer struct {
	cmd    *exec.Cmd
	port   int
	exited chan struct{}
}

func startRedis(ctx context.Context, bin, dir string) (*redisServer, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	logf, err := os.Create(filepath.Join(dir, fmt.Sprintf("redis-%d.log", port)))
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", dir, "--protected-mode", "no", "--loglevel", "warning")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	r := &redisServer{cmd: cmd, port: port, exited: make(chan struct{})}
	go func() { cmd.Wait(); close(r.exited) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if v, err := r.do("PING"); err == nil && v == "PONG" {
			progress("started redis-server (pid %d) on port %d", cmd.Process.Pid, port)
			return r, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			r.stop()
			return nil, fmt.Errorf("redis-server did not answer PING within 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (r *redisServer) url() string { return fmt.Sprintf("redis://127.0.0.1:%d/0", r.port) }

func (r *redisServer) stop() {
	r.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-r.exited:
	case <-time.After(10 * time.Second):
	}
}

// commands returns redis-server's total_commands_processed (0 if unknown).
func (r *redisServer) commands() float64 {
	info, err := r.do("INFO", "stats")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "total_commands_processed:"); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	return 0
}

// do sends one command; see resp.Do.
func (r *redisServer) do(args ...string) (string, error) {
	return resp.Do(fmt.Sprintf("127.0.0.1:%d", r.port), args...)
}
