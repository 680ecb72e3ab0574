package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/presence/presence/bench/proc"
	"github.com/presence/presence/webhook"
)

// The webhooks target: what webhooks cost the service. One run with them
// off and one with them on, each against a fresh server: --webhook-streams
// signed-in streams over --webhook-rooms rooms, opened at --rate, with the
// receiver in this process. It reports the server's CPU over the ramp and
// its settling (a window as long in both runs), their ratio on/off, and
// what the receiver saw: requests per second, events, drops.

// webhookConfig is the target's settings.
type webhookConfig struct {
	Streams  int     `json:"streams"`
	Rooms    int     `json:"rooms"`
	Rate     float64 `json:"rate"`
	Sources  int     `json:"sources"`
	JSONPath string  `json:"-"`
}

// WebhookResult is one run.
type WebhookResult struct {
	Mode        string  `json:"mode"` // off or on
	Opened      int     `json:"opened"`
	Failed      int     `json:"failed"`
	RampS       float64 `json:"ramp_s"`
	WindowS     float64 `json:"window_s"`       // ramp start to settled, the same in both runs
	CPUS        float64 `json:"cpu_s"`          // server CPU over the window
	LeaveCPUS   float64 `json:"leave_cpu_s"`    // server CPU over the leave window
	Requests    int64   `json:"requests"`       // at the receiver over the window
	RequestsPS  float64 `json:"requests_per_s"` // over the window
	MaxPerS     int64   `json:"max_requests_in_a_second"`
	Events      int64   `json:"events"`       // delivered over the window
	Expected    int64   `json:"expected"`     // rooms occupied and members joined
	AllInS      float64 `json:"all_in_s"`     // from ramp start to the last expected event, 0 if not all came
	LeaveEvents int64   `json:"leave_events"` // members left and rooms vacated, after everyone closed
	Dropped     float64 `json:"dropped"`      // presence_webhook_events_dropped_total
	Error       string  `json:"error,omitempty"`
}

const benchHookSecret = "bench-webhook-secret-0123456789abcdef"

// hookSink is the receiver: it checks signatures, as a receiver must, and
// counts requests per second and events.
type hookSink struct {
	srv      *http.Server
	url      string
	requests atomic.Int64
	events   atomic.Int64
	bad      atomic.Int64
	mu       sync.Mutex
	perSec   map[int64]int64 // requests by Unix second
}

func startHookSink() (*hookSink, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	h := &hookSink{url: "http://" + ln.Addr().String() + "/hook", perSec: make(map[int64]int64)}
	h.srv = &http.Server{Handler: http.HandlerFunc(h.serve), ReadHeaderTimeout: 5 * time.Second}
	go h.srv.Serve(ln)
	return h, nil
}

func (h *hookSink) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil || !webhook.Verify(body, r.Header.Get(webhook.SignatureHeader), benchHookSecret) {
		h.bad.Add(1)
		http.Error(w, "bad", http.StatusUnauthorized)
		return
	}
	var b webhook.Body
	if err := json.Unmarshal(body, &b); err != nil {
		h.bad.Add(1)
		http.Error(w, "bad", http.StatusBadRequest)
		return
	}
	h.requests.Add(1)
	h.events.Add(int64(len(b.Events)))
	h.mu.Lock()
	h.perSec[time.Now().Unix()]++
	h.mu.Unlock()
}

// reset starts counting afresh, and returns the most requests seen in one
// second since the last reset.
func (h *hookSink) reset() int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	var most int64
	for _, n := range h.perSec {
		most = max(most, n)
	}
	clear(h.perSec)
	h.requests.Store(0)
	h.events.Store(0)
	return most
}

// runWebhooksTarget builds presence and runs webhooks off, then on.
func runWebhooksTarget(ctx context.Context, o options, cfg webhookConfig) error {
	if cfg.Streams < 1 || cfg.Rooms < 1 || cfg.Rooms > cfg.Streams {
		return errors.New("--webhook-streams and --webhook-rooms: need 1 <= rooms <= streams")
	}
	s, err := setupLone(ctx, o, "webhooks")
	if err != nil {
		return err
	}
	defer os.RemoveAll(s.tmp)
	sink, err := startHookSink()
	if err != nil {
		return err
	}
	defer sink.srv.Close()
	progress("minting %d tokens", cfg.Streams)
	tokens := make([]string, cfg.Streams)
	for i := range tokens {
		t, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
			"sub": fmt.Sprintf("user%d", i), "name": fmt.Sprintf("User %d", i), "exp": time.Now().Add(24 * time.Hour).Unix(),
		}).SignedString([]byte(benchHookSecret))
		if err != nil {
			return err
		}
		tokens[i] = t
	}
	var results []WebhookResult
	var window time.Duration // the off run's, used by the on run too
	failed := false
	for _, mode := range []string{"off", "on"} {
		if ctx.Err() != nil {
			break
		}
		args := append(slices.Clone(s.args), "--token-secret", benchHookSecret)
		if mode == "on" {
			args = append(args, "--webhook-url", sink.url, "--webhook-secret", benchHookSecret)
		}
		progress("run: webhooks %s, %d streams over %d rooms at %.0f/s (load average %s)", mode, cfg.Streams, cfg.Rooms, cfg.Rate, loadAvg())
		res, w, err := doWebhookRun(ctx, cfg, mode, s.bin, args, filepath.Join(s.tmp, "webhooks-"+mode+".log"), tokens, sink, window)
		if err != nil {
			failed = true
			res.Error = err.Error()
			progress("run %s failed: %v", mode, err)
		}
		window = w
		results = append(results, res)
		if sleepCtx(ctx, 2*time.Second) != nil {
			break
		}
	}
	writeWebhookReport(os.Stdout, s.env, cfg, results)
	if cfg.JSONPath != "" {
		out := struct {
			Env     Env             `json:"env"`
			Config  webhookConfig   `json:"config"`
			Results []WebhookResult `json:"results"`
		}{s.env, cfg, results}
		b, err := json.MarshalIndent(out, "", "  ")
		if err != nil {
			return err
		}
		if err := writeOutput(s.root, cfg.JSONPath, append(b, '\n')); err != nil {
			return err
		}
	}
	if failed || ctx.Err() != nil {
		return errors.New("a run failed or was interrupted (see above)")
	}
	return nil
}

// hookStream is one signed-in stream held open by the bench.
type hookStream struct{ conn net.Conn }

// openHookStream opens room's stream with token and reads it in the
// background until closed; it returns once the answer's head arrived.
func openHookStream(d *net.Dialer, addr, room, token string) (*hookStream, error) {
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	req := "GET /rooms/" + room + "/events?token=" + token + " HTTP/1.1\r\nHost: " + addr + "\r\nAccept: text/event-stream\r\n\r\n"
	if _, err := io.WriteString(conn, req); err != nil {
		conn.Close()
		return nil, err
	}
	br := bufio.NewReaderSize(conn, 512)
	conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	line, err := br.ReadString('\n')
	if err != nil || !strings.Contains(line, " 200 ") {
		conn.Close()
		return nil, fmt.Errorf("open %s: %q %v", room, line, err)
	}
	conn.SetReadDeadline(time.Time{})
	go io.Copy(io.Discard, br) // until closed
	return &hookStream{conn: conn}, nil
}

// doWebhookRun is one run. window, if not zero, is the measuring window to
// use (the off run's), so that both runs are measured over as long.
func doWebhookRun(ctx context.Context, cfg webhookConfig, mode, bin string, args []string, logPath string, tokens []string, sink *hookSink, window time.Duration) (WebhookResult, time.Duration, error) {
	res := WebhookResult{Mode: mode, Expected: int64(cfg.Rooms + cfg.Streams)}
	srv, err := startServer(ctx, bin, args, logPath)
	if err != nil {
		return res, window, err
	}
	defer srv.stop()
	var dialers []*net.Dialer
	for s := 0; s < cfg.Sources; s++ {
		dialers = append(dialers, newDialer(net.IPv4(127, 0, 0, byte(2+s))))
	}
	sink.reset()
	pid := srv.cmd.Process.Pid
	cpu0, err := proc.CPU(pid)
	if err != nil {
		return res, window, err
	}
	start := time.Now()
	streams := make([]*hookStream, cfg.Streams)
	var wg sync.WaitGroup
	var failed atomic.Int64
	gap := time.Duration(float64(time.Second) / cfg.Rate)
	for i := range cfg.Streams {
		if ctx.Err() != nil {
			break
		}
		if d := time.Until(start.Add(time.Duration(i) * gap)); d > 0 {
			time.Sleep(d)
		}
		wg.Go(func() {
			st, err := openHookStream(dialers[i%len(dialers)], srv.addr, fmt.Sprintf("room%d", i%cfg.Rooms), tokens[i])
			if err != nil {
				failed.Add(1)
				return
			}
			streams[i] = st
		})
	}
	wg.Wait()
	res.RampS = time.Since(start).Seconds()
	res.Failed = int(failed.Load())
	res.Opened = cfg.Streams - res.Failed
	// The window: the ramp, the grace (3 s by default: events are told
	// once settled) and a few seconds of delivery.
	if window == 0 {
		window = time.Since(start) + 8*time.Second
	}
	deadline := start.Add(window)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if res.AllInS == 0 && mode == "on" && sink.events.Load() >= res.Expected {
			res.AllInS = time.Since(start).Seconds()
		}
		time.Sleep(50 * time.Millisecond)
	}
	cpu1, err := proc.CPU(pid)
	if err != nil {
		return res, window, err
	}
	res.WindowS, res.CPUS = window.Seconds(), cpu1-cpu0
	res.Requests, res.Events = sink.requests.Load(), sink.events.Load()
	res.RequestsPS = float64(res.Requests) / window.Seconds()
	res.Dropped = srv.metric(ctx, "presence_webhook_events_dropped_total")
	res.MaxPerS = sink.reset()

	// Everyone leaves; the same length of window for the leaves.
	leaveStart := time.Now()
	for _, st := range streams {
		if st != nil {
			st.conn.Close()
		}
	}
	leaveWindow := 3*time.Second + 8*time.Second // the grace and delivery
	if sleepCtx(ctx, time.Until(leaveStart.Add(leaveWindow))) != nil {
		return res, window, ctx.Err()
	}
	cpu2, err := proc.CPU(pid)
	if err != nil {
		return res, window, err
	}
	res.LeaveCPUS = cpu2 - cpu1
	res.LeaveEvents = sink.events.Load()
	if mode == "on" && sink.bad.Load() > 0 {
		return res, window, fmt.Errorf("%d requests with a bad signature or body", sink.bad.Load())
	}
	return res, window, nil
}

// writeWebhookReport prints the runs side by side, and the ratio on/off.
func writeWebhookReport(w io.Writer, env Env, cfg webhookConfig, rs []WebhookResult) {
	fmt.Fprintf(w, "\n## Webhooks: %d signed-in streams over %d rooms at %.0f/s (%s, %d CPUs, %s)\n\n", cfg.Streams, cfg.Rooms, cfg.Rate, env.Date, env.NProc, env.GoVersion)
	fmt.Fprintln(w, "| webhooks | opened | failed | ramp s | window s | CPU s | leave CPU s | requests/s | most in 1 s | events (want) | all in s | leave events | dropped |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|---|---|")
	for _, r := range rs {
		fmt.Fprintf(w, "| %s | %d | %d | %.1f | %.1f | %.2f | %.2f | %.2f | %d | %d (%d) | %.1f | %d | %.0f |", r.Mode, r.Opened, r.Failed, r.RampS, r.WindowS, r.CPUS, r.LeaveCPUS, r.RequestsPS, r.MaxPerS, r.Events, r.Expected, r.AllInS, r.LeaveEvents, r.Dropped)
		if r.Error != "" {
			fmt.Fprintf(w, " error: %s", r.Error)
		}
		fmt.Fprintln(w)
	}
	if len(rs) == 2 && rs[0].CPUS > 0 {
		fmt.Fprintf(w, "\nramp CPU on/off: %.2f (target <= 1.2); leave CPU on/off: %.2f\n", rs[1].CPUS/rs[0].CPUS, rs[1].LeaveCPUS/max(rs[0].LeaveCPUS, 0.01))
	}
}
