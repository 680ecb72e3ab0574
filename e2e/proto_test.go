package e2e

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// protoServer is the service reached over one protocol: HTTP/1.1 over
// plain TCP (raw sockets, as in the other tests), HTTP/1.1 over TLS (a
// connection per stream, as a browser without HTTP/2 has), or HTTP/2 over
// TLS, every stream on one connection.
type protoServer struct {
	*testServer
	h2    *http.Transport // nil for plain HTTP/1.1
	h1    *http.Transport // HTTP/1.1 over TLS, a connection per stream
	tlsH1 bool            // streams over h1 rather than h2
	mu    sync.Mutex
	conns []net.Conn // the HTTP/2 transport's connections
}

// forEachProto runs test as parallel subtests, over HTTP/1.1, HTTP/1.1
// over TLS, and HTTP/2.
func forEachProto(t *testing.T, test func(t *testing.T, proto string)) {
	for _, proto := range []string{"http1", "https1", "http2"} {
		t.Run(proto, func(t *testing.T) {
			t.Parallel()
			test(t, proto)
		})
	}
}

// startProto starts the service with args, over TLS for https1 and http2.
func startProto(t *testing.T, proto string, args ...string) *protoServer {
	t.Helper()
	if proto == "http1" {
		return &protoServer{testServer: startServer(t, args...)}
	}
	var ips []net.IP // the address the service listens on, if not loopback
	for i, a := range args {
		if a == "--addr" && i+1 < len(args) {
			if host, _, err := net.SplitHostPort(args[i+1]); err == nil && net.ParseIP(host) != nil {
				ips = append(ips, net.ParseIP(host))
			}
		}
	}
	cert, key, pool := selfSigned(t, t.TempDir(), ips...)
	p := &protoServer{testServer: startServer(t, append([]string{"--tls-cert", cert, "--tls-key", key}, args...)...)}
	if !strings.HasPrefix(p.URL, "https://") {
		t.Fatalf("listening on %q, want https", p.URL)
	}
	p.h2 = &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: pool},
		ForceAttemptHTTP2: true,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			if err == nil {
				p.mu.Lock()
				p.conns = append(p.conns, c)
				p.mu.Unlock()
			}
			return c, err
		},
	}
	p.h1 = &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool},
		TLSNextProto:    map[string]func(string, *tls.Conn) http.RoundTripper{}, // no HTTP/2
	}
	p.tlsH1 = proto == "https1"
	t.Cleanup(p.h2.CloseIdleConnections)
	t.Cleanup(p.h1.CloseIdleConnections)
	return p
}

// open opens a stream at path.
func (p *protoServer) open(t *testing.T, path string) *sseClient {
	t.Helper()
	c, err := p.openErr(path)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	t.Cleanup(c.Close)
	return c
}

func (p *protoServer) openErr(path string) (*sseClient, error) {
	switch {
	case p.h2 == nil:
		return dialErr(p.Addr, path)
	case p.tlsH1:
		return p.openTLS(p.h1, 1, path)
	}
	return p.openTLS(p.h2, 2, path)
}

// member opens a stream at path for a client that reads and discards
// everything, on a connection of its own, as another browser would: over
// HTTP/2 every stream shares one connection, and a write there waits for
// the other streams' frames too. Parsing would cost the test's CPU, which
// the server's stream write deadline would see as slow readers.
func (p *protoServer) member(path string) (io.Closer, error) {
	var body io.ReadCloser
	if p.h2 == nil {
		conn, err := net.DialTimeout("tcp", p.Addr, 5*time.Second)
		if err != nil {
			return nil, err
		}
		if _, err := io.WriteString(conn, "GET "+path+" HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			conn.Close()
			return nil, err
		}
		body = conn
	} else {
		req, err := http.NewRequest("GET", p.URL+path, nil)
		if err != nil {
			return nil, err
		}
		resp, err := p.h1.RoundTrip(req)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode != 200 {
			resp.Body.Close()
			return nil, fmt.Errorf("status %d", resp.StatusCode)
		}
		body = resp.Body
	}
	go io.Copy(io.Discard, body)
	return body, nil
}

// openTLS opens a stream at path through tr, in HTTP/major.
func (p *protoServer) openTLS(tr *http.Transport, major int, path string) (*sseClient, error) {
	req, err := http.NewRequest("GET", p.URL+path, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "text/event-stream")
	resp, err := tr.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	if resp.ProtoMajor != major {
		resp.Body.Close()
		return nil, fmt.Errorf("%s, want HTTP/%d", resp.Proto, major)
	}
	c := &sseClient{conn: h2Stream{body: resp.Body}, Status: resp.StatusCode, Header: resp.Header,
		notify: make(chan struct{}, 1), done: make(chan struct{})}
	go c.read(resp.Body)
	return c, nil
}

// h2Stream lets sseClient.Close end one stream read through an
// http.Transport (over HTTP/2 with RST_STREAM and CANCEL, as a browser
// does, over HTTP/1.1 by closing its connection): Close is the only method
// the client calls on it.
type h2Stream struct {
	net.Conn
	body io.Closer
}

func (s h2Stream) Close() error { return s.body.Close() }

// metric reads one sample from /metrics.
func (p *protoServer) metric(t *testing.T, name string) float64 {
	t.Helper()
	return metric(t, p.testServer, name)
}

func (p *protoServer) disconnects(t *testing.T, reason string) float64 {
	t.Helper()
	return p.metric(t, `presence_disconnects_total{reason="`+reason+`"}`)
}

// disconnectsAtLeast is metricAtLeast for the streams that ended for
// reason.
func (p *protoServer) disconnectsAtLeast(t *testing.T, reason string, want float64) float64 {
	t.Helper()
	return metricAtLeast(t, p.testServer, `presence_disconnects_total{reason="`+reason+`"}`, want)
}

// stayOpen fails if c ends within d.
func stayOpen(t *testing.T, c *sseClient, d time.Duration, what string) {
	t.Helper()
	start := time.Now()
	select {
	case <-c.done:
		t.Fatalf("%s: stream ended after %s (%v), want open for %s", what, time.Since(start).Round(time.Millisecond), c.err, d)
	case <-time.After(d):
	}
}

// heartbeats counts the heartbeat comments c received.
func heartbeats(c *sseClient) int {
	n := 0
	for _, l := range c.Lines() {
		if strings.HasPrefix(l, ":") {
			n++
		}
	}
	return n
}

func mustRequest(t *testing.T, url string) *http.Request {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// pausingConn is a client's connection that stops reading while paused,
// as a frozen client would: the server's writes fill the socket buffers.
type pausingConn struct {
	net.Conn
	paused *atomic.Bool
}

func (c pausingConn) Read(p []byte) (int, error) {
	for c.paused.Load() {
		time.Sleep(10 * time.Millisecond)
	}
	return c.Conn.Read(p)
}
