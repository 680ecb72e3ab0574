package e2e

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// tlsNode is the built service over HTTPS as a process of its own, so that
// its CPU time can be read apart from the test's.
type tlsNode struct {
	addr string
	cmd  *exec.Cmd
}

func startTLSNode(t *testing.T, args ...string) *tlsNode {
	t.Helper()
	cert, key, _ := selfSigned(t, t.TempDir())
	n := startServer(t, append([]string{"--tls-cert", cert, "--tls-key", key}, args...)...)
	if !strings.HasPrefix(n.URL, "https://") {
		t.Fatalf("node did not start over HTTPS: %s", n.URL)
	}
	return &tlsNode{addr: n.Addr, cmd: n.cmd}
}

// cpu returns the process's user plus system CPU time so far.
func (n *tlsNode) cpu(t *testing.T) time.Duration {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", n.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	utime, _ := strconv.Atoi(f[11]) // fields 14 and 15 of proc(5), in clock ticks
	stime, _ := strconv.Atoi(f[12])
	return time.Duration(utime+stime) * time.Second / 100 // USER_HZ is 100 on Linux
}

// get is an HTTP/2 GET of the node's path.
func (n *tlsNode) get(t *testing.T, path string) (int, string) {
	t.Helper()
	tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, ForceAttemptHTTP2: true}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 5 * time.Second}).Get("https://" + n.addr + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	if resp.ProtoMajor != 2 {
		t.Fatalf("GET %s over %s, want HTTP/2", path, resp.Proto)
	}
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// A connection that opens streams and resets them at once (HEADERS then
// RST_STREAM), faster than any browser, gets GOAWAY and is closed within a
// second or two, at little cost to the server, even if it keeps one stream
// open so that a graceful close would never come; it makes no phantom
// people; a new connection is served.
func TestRapidResetIsClosedWithGoAway(t *testing.T) {
	t.Parallel()
	t.Run("resets only", func(t *testing.T) {
		t.Parallel()
		rapidReset(t, "/rooms/rr/events?visitor=", false)
	})
	t.Run("holding a stream open", func(t *testing.T) {
		t.Parallel()
		rapidReset(t, "/rooms/rr/events?visitor=", true)
	})
	t.Run("another route", func(t *testing.T) {
		t.Parallel()
		rapidReset(t, "/api/rooms/rr?", false)
	})
}

// rapidReset sends 100,000 HEADERS+RST_STREAM pairs for path and a random
// visitor id on one connection to a node of its own, after a stream it
// keeps open if hold.
func rapidReset(t *testing.T, path string, hold bool) {
	n := startTLSNode(t) // default settings
	conn, err := tls.Dial("tcp", n.addr, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if p := conn.ConnectionState().NegotiatedProtocol; p != "h2" {
		t.Fatalf("negotiated %q, want h2", p)
	}

	// The reader notes the GOAWAY and the end of the connection.
	type goAwayInfo struct {
		code http2.ErrCode
		last uint32
		at   time.Time
	}
	var goAway atomic.Pointer[goAwayInfo]
	var closedAt atomic.Int64
	readDone := make(chan error, 1)
	go func() {
		fr := http2.NewFramer(nil, conn)
		for {
			f, err := fr.ReadFrame()
			if err != nil {
				closedAt.Store(time.Now().UnixNano())
				readDone <- err
				return
			}
			if g, ok := f.(*http2.GoAwayFrame); ok && goAway.Load() == nil {
				goAway.Store(&goAwayInfo{g.ErrCode, g.LastStreamID, time.Now()})
			}
		}
	}()

	const pairs = 100000
	cpu0, start := n.cpu(t), time.Now()
	bw := bufio.NewWriterSize(conn, 64<<10)
	if _, err := io.WriteString(bw, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	fr := http2.NewFramer(bw, nil)
	fr.WriteSettings()
	var hbuf bytes.Buffer
	henc := hpack.NewEncoder(&hbuf)
	headers := func(id uint32) {
		hbuf.Reset()
		for _, f := range [][2]string{{":method", "GET"}, {":scheme", "https"}, {":authority", n.addr}, {":path", path + randVisitor()}} {
			henc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
		}
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: hbuf.Bytes(), EndStream: true, EndHeaders: true})
	}
	first := uint32(1)
	if hold {
		p := path
		path = "/rooms/rr/events?visitor="
		headers(1) // a stream that stays open
		path = p
		first = 3
	}
	sent, sentBeforeGoAway := 0, -1
	var werr error
	for i := range pairs {
		if goAway.Load() != nil && sentBeforeGoAway < 0 {
			sentBeforeGoAway = i
		}
		id := first + uint32(2*i)
		headers(id)
		fr.WriteRSTStream(id, http2.ErrCodeCancel)
		if i%16 == 15 {
			if werr = bw.Flush(); werr != nil {
				break
			}
		}
		sent = i + 1
	}
	if werr == nil {
		werr = bw.Flush()
	}
	wrote := time.Since(start)
	var rerr error
	select {
	case rerr = <-readDone:
	case <-time.After(10 * time.Second):
		t.Fatalf("the connection is still open 10 s after %d HEADERS+RST_STREAM pairs (GOAWAY: %v)", sent, goAway.Load() != nil)
	}
	closed := time.Duration(closedAt.Load() - start.UnixNano())
	cpu := n.cpu(t) - cpu0
	g := goAway.Load()
	if g == nil {
		t.Fatalf("the connection closed after %s without a GOAWAY", closed)
	}
	if sentBeforeGoAway < 0 {
		sentBeforeGoAway = sent
	}
	t.Logf("GOAWAY (%v, last stream %d) after %s and at most %d pairs; connection closed after %s; %d pairs written in %s (%v); server CPU %s",
		g.code, g.last, g.at.Sub(start).Round(time.Millisecond), sentBeforeGoAway,
		closed.Round(time.Millisecond), sent, wrote.Round(time.Millisecond), werr, cpu)
	if closed > 5*time.Second {
		t.Errorf("the connection took %s to close", closed)
	}
	if cpu > 2*time.Second {
		t.Errorf("the server spent %s of CPU on one attacking connection", cpu)
	}
	if g.last > 2*10000 {
		t.Errorf("the server took %d streams before GOAWAY", g.last/2)
	}
	if rerr != nil && !errors.Is(rerr, io.EOF) {
		t.Logf("reader ended with %v", rerr)
	}

	// No phantom people: the room is empty at once, not after the grace.
	waitUntil(t, 1500*time.Millisecond, "the room to be empty", func() bool {
		_, body := n.get(t, "/api/rooms/rr")
		return strings.Contains(body, `"count":0`)
	})
	// A new connection is a new start.
	if code, _ := n.get(t, "/healthz"); code != 200 {
		t.Errorf("a new connection: %d", code)
	}
	_, body := n.get(t, "/metrics")
	if !strings.Contains(body, `presence_refused_total{reason="resets"}`) || strings.Contains(body, `presence_refused_total{reason="resets"} 0`) {
		t.Errorf("no refusal counted under reason resets")
	}
}
