package main

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// selfSignedCert writes a fresh certificate for 127.0.0.1 and its key to
// dir and returns their paths and a pool that trusts the certificate.
func selfSignedCert(dir string) (certFile, keyFile string, pool *x509.CertPool, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "presence soak"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return "", "", nil, err
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return "", "", nil, err
	}
	certFile, keyFile = filepath.Join(dir, "soak-cert.pem"), filepath.Join(dir, "soak-key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		return "", "", nil, err
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		return "", "", nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return "", "", nil, err
	}
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool, nil
}

// newH2Transport returns a transport that speaks only HTTP/2 and holds at
// most one connection, dialed from d: its streams share that connection,
// as a browser's tabs do.
func newH2Transport(d *net.Dialer, pool *x509.CertPool) *http.Transport {
	var p http.Protocols
	p.SetHTTP2(true)
	return &http.Transport{
		DialContext:           d.DialContext,
		TLSClientConfig:       &tls.Config{RootCAs: pool},
		Protocols:             &p,
		MaxConnsPerHost:       1,
		TLSHandshakeTimeout:   soakOpenTimeout,
		ResponseHeaderTimeout: soakOpenTimeout,
		DisableCompression:    true,
	}
}

// newAPIClient returns the client of /healthz, /metrics and /api/rooms:
// HTTP/1.1, a new connection per request, so that the server's goroutines
// and memory are measured the same way at the start and at the end.
func newAPIClient(pool *x509.CertPool) *http.Client {
	var p http.Protocols
	p.SetHTTP1(true)
	return &http.Client{
		Timeout: 5 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig:   &tls.Config{RootCAs: pool},
			Protocols:         &p,
			DisableKeepAlives: true,
		},
	}
}

// getBody GETs url and returns the body of a 200 answer (at most 4 MiB).
func getBody(ctx context.Context, hc *http.Client, url string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != 200 {
		return nil, fmt.Errorf("GET %s: status %d: %.200s", url, resp.StatusCode, b)
	}
	return b, nil
}

// parseMetrics reads the Prometheus text format into series -> value, the
// series named as printed: `name` or `name{label="v",...}`.
func parseMetrics(r io.Reader) (map[string]float64, error) {
	out := map[string]float64{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		// The value follows the series (label values may hold spaces).
		cut := strings.LastIndexByte(line, '}')
		if cut < 0 {
			cut = strings.IndexByte(line, ' ')
		} else {
			cut++
		}
		if cut <= 0 || cut >= len(line) {
			continue
		}
		fields := strings.Fields(line[cut:])
		if len(fields) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			continue
		}
		out[line[:cut]] = v
	}
	return out, sc.Err()
}

// apiRooms is the answer of GET /api/rooms.
type apiRooms struct {
	Rooms []struct {
		Room        string `json:"room"`
		Count       int    `json:"count"`
		Connections int    `json:"connections"`
	} `json:"rooms"`
	Total int `json:"total"`
}

func parseAPIRooms(b []byte) (apiRooms, error) {
	var a apiRooms
	err := json.Unmarshal(b, &a)
	return a, err
}

// TCP states of /proc/net/tcp (include/net/tcp_states.h).
const tcpEstablished = 1

// serverSockets reads /proc/net/tcp and /proc/net/tcp6 and returns, for
// each socket whose local address is srv, its peer and state. A stream the
// server has closed leaves ESTABLISHED at once (FIN_WAIT1 while its unsent
// bytes wait for a window that never opens), so this tells whether the
// server cut a client that never reads, which the client cannot see.
func serverSockets(srv netip.AddrPort) (map[netip.AddrPort]int, error) {
	out := map[netip.AddrPort]int{}
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(f)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			return nil, err
		}
		parseProcNetTCP(b, srv, out)
	}
	return out, nil
}

// parseProcNetTCP adds to out the peer and state of every line of b (the
// text of /proc/net/tcp or tcp6) whose local address is srv.
func parseProcNetTCP(b []byte, srv netip.AddrPort, out map[netip.AddrPort]int) {
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 4 || !strings.HasSuffix(f[0], ":") {
			continue
		}
		local, ok1 := parseProcAddr(f[1])
		peer, ok2 := parseProcAddr(f[2])
		st, err := strconv.ParseUint(f[3], 16, 8)
		if !ok1 || !ok2 || err != nil || local != srv {
			continue
		}
		out[peer] = int(st)
	}
}

// parseProcAddr parses "0100007F:1F90" (IPv4) or 32 hex digits and a port
// (IPv6): the address as the kernel's 32-bit words in host byte order.
func parseProcAddr(s string) (netip.AddrPort, bool) {
	h, p, ok := strings.Cut(s, ":")
	if !ok {
		return netip.AddrPort{}, false
	}
	port, err := strconv.ParseUint(p, 16, 16)
	if err != nil {
		return netip.AddrPort{}, false
	}
	raw, err := hex.DecodeString(h)
	if err != nil || (len(raw) != 4 && len(raw) != 16) {
		return netip.AddrPort{}, false
	}
	ip := make([]byte, len(raw))
	for i := 0; i < len(raw); i += 4 { // each word: host order (little-endian here) to network order
		binary.BigEndian.PutUint32(ip[i:], binary.LittleEndian.Uint32(raw[i:]))
	}
	addr, _ := netip.AddrFromSlice(ip)
	return netip.AddrPortFrom(addr.Unmap(), uint16(port)), true
}
