package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
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
// persistence, killed at the end. rdb reads its counters over one
// connection, so that each reading adds one INFO to what it counts.
type redisServer struct {
	*server
	port int
	rdb  *goredis.Client
}

func startRedis(ctx context.Context, bin, dir string) (*redisServer, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	s, err := startProcess(bin, []string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", dir, "--protected-mode", "no", "--loglevel", "warning"},
		filepath.Join(dir, fmt.Sprintf("redis-%d.log", port)))
	if err != nil {
		return nil, err
	}
	r := &redisServer{server: s, port: port, rdb: goredis.NewClient(&goredis.Options{
		Addr:                     fmt.Sprintf("127.0.0.1:%d", port),
		DialTimeout:              time.Second,
		ReadTimeout:              5 * time.Second,
		WriteTimeout:             5 * time.Second,
		MaxRetries:               -1, // startRedis retries the PING itself
		PoolSize:                 1,
		DisableIdentity:          true,
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
	})}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if v, err := r.rdb.Ping(ctx).Result(); err == nil && v == "PONG" {
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

// stop closes the client and kills redis-server.
func (r *redisServer) stop() {
	r.rdb.Close()
	r.server.stop()
}

// commands returns redis-server's total_commands_processed (0 if unknown).
func (r *redisServer) commands() float64 {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	f, _ := strconv.ParseFloat(r.rdb.InfoMap(ctx, "stats").Item("Stats", "total_commands_processed"), 64)
	return f
}
