package e2e

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// Pages of allowed origins may use the streams and the API; others are
// refused before a stream opens; the service's own pages need nothing.
func TestCrossOrigin(t *testing.T) {
	s := startServer(t, "--allowed-origins", "https://docs.example.com, http://127.0.0.2:9999")
	hc := &http.Client{Timeout: 5 * time.Second}
	req := func(method, path, origin string, hdr ...string) *http.Response {
		t.Helper()
		r, _ := http.NewRequest(method, s.URL+path, nil)
		if origin != "" {
			r.Header.Set("Origin", origin)
		}
		for i := 0; i+1 < len(hdr); i += 2 {
			r.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := hc.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	if r := req("GET", "/api/rooms/lobby", "https://docs.example.com"); r.StatusCode != 200 || r.Header.Get("Access-Control-Allow-Origin") != "https://docs.example.com" {
		t.Errorf("allowed origin on the API: %d %q", r.StatusCode, r.Header.Get("Access-Control-Allow-Origin"))
	}
	c := dial(t, s, "/rooms/w/events", "Origin: http://127.0.0.2:9999")
	if c.Status != 200 || c.Header.Get("Access-Control-Allow-Origin") != "http://127.0.0.2:9999" {
		t.Errorf("allowed origin on a stream: %d %q", c.Status, c.Header.Get("Access-Control-Allow-Origin"))
	}
	c.waitCount(t, 1)
	r := req("GET", "/rooms/w/events", "https://evil.example")
	body, _ := io.ReadAll(r.Body)
	if r.StatusCode != 403 || !strings.Contains(string(body), "may not use") {
		t.Errorf("other origin on a stream: %d %q %s", r.StatusCode, r.Header.Get("Access-Control-Allow-Origin"), body)
	}
	if code, _, b := get(t, s.URL+"/api/rooms/w"); !strings.Contains(b, `"count":1`) {
		t.Errorf("a refused page was counted: %d %s", code, b)
	}
	if r := req("GET", "/api/rooms/lobby", s.URL); r.StatusCode != 200 {
		t.Errorf("the service's own origin: %d", r.StatusCode)
	}
	p := req("OPTIONS", "/rooms/w/events", "https://docs.example.com", "Access-Control-Request-Method", "GET", "Access-Control-Request-Headers", "last-event-id")
	if p.StatusCode != 204 || !strings.Contains(p.Header.Get("Access-Control-Allow-Headers"), "Last-Event-ID") {
		t.Errorf("preflight: %d %v", p.StatusCode, p.Header)
	}
	if r := req("GET", "/widget.js", "https://anywhere.example"); r.StatusCode != 200 || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/javascript") {
		t.Errorf("widget.js: %d %q", r.StatusCode, r.Header.Get("Content-Type"))
	}
}

// selfSigned writes a certificate for 127.0.0.1 (and ips) and its key to
// dir.
func selfSigned(t *testing.T, dir string, ips ...net.IP) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "presence test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  append([]net.IP{net.IPv4(127, 0, 0, 1)}, ips...),
		DNSNames:     []string{"localhost"},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// With --tls-cert and --tls-key the service speaks HTTPS and HTTP/2: many
// streams share one connection, so a browser's six-connections-per-host
// limit of HTTP/1.1 does not hold a seventh tab back.
func TestHTTP2CarriesManyStreamsOnOneConnection(t *testing.T) {
	cert, key, pool := selfSigned(t, t.TempDir())
	base := startTLSServer(t, cert, key)

	var dials atomic.Int32
	tr := &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: pool},
		ForceAttemptHTTP2: true,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			dials.Add(1)
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		},
	}
	t.Cleanup(tr.CloseIdleConnections)
	hc := &http.Client{Transport: tr}
	const tabs = 10
	var last *bufio.Reader
	for i := range tabs {
		resp, err := hc.Get(base + "/rooms/h2/events")
		if err != nil {
			t.Fatalf("stream %d: %v", i+1, err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		if resp.ProtoMajor != 2 || resp.StatusCode != 200 {
			t.Fatalf("stream %d: %s %d, want HTTP/2 200", i+1, resp.Proto, resp.StatusCode)
		}
		last = bufio.NewReader(resp.Body)
	}
	if n := dials.Load(); n != 1 {
		t.Errorf("%d TCP connections for %d streams, want 1", n, tabs)
	}
	// The last stream's first count includes all ten.
	for {
		l, err := last.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "data: "); ok && !strings.HasPrefix(v, "{") {
			if n, _ := strconv.Atoi(v); n != tabs {
				t.Errorf("tenth stream's count %d, want %d", n, tabs)
			}
			break
		}
	}
}

// startTLSServer runs the service over HTTPS with cert and key and returns
// its base URL.
func startTLSServer(t *testing.T, cert, key string) string {
	t.Helper()
	s := startServer(t, "--tls-cert", cert, "--tls-key", key, "--grace", "300ms")
	if !strings.HasPrefix(s.URL, "https://") {
		t.Fatalf("listening on %q, want https", s.URL)
	}
	return s.URL
}

// getInsecure is get for the tests' own self-signed HTTPS server.
func getInsecure(t *testing.T, url string) (int, http.Header, string) {
	t.Helper()
	return getWith(t, &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}, url)
}
