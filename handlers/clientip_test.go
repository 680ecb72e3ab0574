package handlers

import (
	"fmt"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
)

func TestClientAddr(t *testing.T) {
	proxies, err := parseTrustedProxies([]string{"10.0.0.0/8", "fd00::/8", "192.0.2.7"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		peer     string
		headers  [][2]string
		want     string
		viaProxy bool
	}{
		{name: "no proxy: the peer", peer: "203.0.113.5:4000", want: "203.0.113.5"},
		{name: "spoof: XFF from an untrusted peer is ignored", peer: "203.0.113.5:4000",
			headers: [][2]string{{"X-Forwarded-For", "1.2.3.4"}}, want: "203.0.113.5"},
		{name: "spoof: Forwarded from an untrusted peer is ignored", peer: "203.0.113.5:4000",
			headers: [][2]string{{"Forwarded", "for=1.2.3.4"}}, want: "203.0.113.5"},
		{name: "spoof: a trusted address in XFF from an untrusted peer", peer: "203.0.113.5:4000",
			headers: [][2]string{{"X-Forwarded-For", "10.0.0.1"}}, want: "203.0.113.5"},
		{name: "trusted proxy, XFF", peer: "10.1.2.3:5000",
			headers: [][2]string{{"X-Forwarded-For", "198.51.100.9"}}, want: "198.51.100.9", viaProxy: true},
		{name: "spoof: client prepends to XFF; the rightmost untrusted counts", peer: "10.1.2.3:5000",
			headers: [][2]string{{"X-Forwarded-For", "1.2.3.4, 5.6.7.8, 198.51.100.9"}}, want: "198.51.100.9", viaProxy: true},
		{name: "chain of trusted proxies is skipped", peer: "10.1.2.3:5000",
			headers: [][2]string{{"X-Forwarded-For", "1.2.3.4, 198.51.100.9, 192.0.2.7, 10.9.9.9"}}, want: "198.51.100.9", viaProxy: true},
		{name: "spoof: client puts a trusted address last but one", peer: "10.1.2.3:5000",
			headers: [][2]string{{"X-Forwarded-For", "10.0.0.1, 198.51.100.9"}}, want: "198.51.100.9", viaProxy: true},
		{name: "several XFF lines read in order", peer: "10.1.2.3:5000",
			headers: [][2]string{{"X-Forwarded-For", "1.2.3.4"}, {"X-Forwarded-For", "198.51.100.9, 10.0.0.2"}}, want: "198.51.100.9", viaProxy: true},
		{name: "all hops trusted: the leftmost", peer: "10.1.2.3:5000",
			headers: [][2]string{{"X-Forwarded-For", "10.0.0.5, 10.0.0.6"}}, want: "10.0.0.5", viaProxy: true},
		{name: "garbage hop: the last trusted hop", peer: "10.1.2.3:5000",
			headers: [][2]string{{"X-Forwarded-For", "1.2.3.4, unknown, 10.0.0.6"}}, want: "10.0.0.6", viaProxy: true},
		{name: "empty XFF: the proxy", peer: "10.1.2.3:5000",
			headers: [][2]string{{"X-Forwarded-For", ""}}, want: "10.1.2.3", viaProxy: true},
		{name: "XFF with a port and bracketed IPv6", peer: "10.1.2.3:5000",
			headers: [][2]string{{"X-Forwarded-For", "[2001:db8::1]:443, 198.51.100.9:1234"}}, want: "198.51.100.9", viaProxy: true},
		{name: "XFF IPv4-mapped IPv6 is IPv4", peer: "10.1.2.3:5000",
			headers: [][2]string{{"X-Forwarded-For", "::ffff:198.51.100.9"}}, want: "198.51.100.9", viaProxy: true},
		{name: "Forwarded, RFC 7239 examples", peer: "10.1.2.3:5000",
			headers: [][2]string{{"Forwarded", `for=192.0.2.43, for="[2001:db8:cafe::17]:4711";proto=https;by=10.0.0.1`}}, want: "2001:db8:cafe::17", viaProxy: true},
		{name: "Forwarded, case and spaces", peer: "10.1.2.3:5000",
			headers: [][2]string{{"Forwarded", `proto=http; For="198.51.100.9:80" ;by=x`}}, want: "198.51.100.9", viaProxy: true},
		{name: "spoof: Forwarded with a quoted comma", peer: "10.1.2.3:5000",
			headers: [][2]string{{"Forwarded", `for="1.2.3.4, 10.0.0.1"`}, {"Forwarded", "for=198.51.100.9"}}, want: "198.51.100.9", viaProxy: true},
		{name: "Forwarded unknown: the proxy", peer: "10.1.2.3:5000",
			headers: [][2]string{{"Forwarded", "for=1.2.3.4, for=unknown"}}, want: "10.1.2.3", viaProxy: true},
		{name: "Forwarded element without for: the proxy", peer: "10.1.2.3:5000",
			headers: [][2]string{{"Forwarded", "for=1.2.3.4, proto=https"}}, want: "10.1.2.3", viaProxy: true},
		{name: "XFF wins over Forwarded", peer: "10.1.2.3:5000",
			headers: [][2]string{{"Forwarded", "for=1.2.3.4"}, {"X-Forwarded-For", "198.51.100.9"}}, want: "198.51.100.9", viaProxy: true},
		{name: "IPv6 trusted proxy", peer: "[fd00::5]:5000",
			headers: [][2]string{{"X-Forwarded-For", "2001:db8::7"}}, want: "2001:db8::7", viaProxy: true},
		{name: "IPv4-mapped peer matches an IPv4 CIDR", peer: "[::ffff:10.1.2.3]:5000",
			headers: [][2]string{{"X-Forwarded-For", "198.51.100.9"}}, want: "198.51.100.9", viaProxy: true},
		{name: "single trusted address", peer: "192.0.2.7:80",
			headers: [][2]string{{"X-Forwarded-For", "198.51.100.9"}}, want: "198.51.100.9", viaProxy: true},
		{name: "next to a single trusted address is not trusted", peer: "192.0.2.8:80",
			headers: [][2]string{{"X-Forwarded-For", "198.51.100.9"}}, want: "192.0.2.8"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/events", nil)
			r.RemoteAddr = tc.peer
			for _, h := range tc.headers {
				r.Header.Add(h[0], h[1])
			}
			got, via, ok := clientAddr(r, proxies)
			if !ok || got != netip.MustParseAddr(tc.want) || via != tc.viaProxy {
				t.Errorf("clientAddr = %v, via proxy %v, ok %v; want %s, %v", got, via, ok, tc.want, tc.viaProxy)
			}
		})
	}
	// Without --trusted-proxies, no header is ever believed.
	r := httptest.NewRequest("GET", "/events", nil)
	r.RemoteAddr = "10.1.2.3:5000"
	r.Header.Set("X-Forwarded-For", "1.2.3.4")
	if got, _, _ := clientAddr(r, nil); got.String() != "10.1.2.3" {
		t.Errorf("no trusted proxies: %v", got)
	}
	r.RemoteAddr = "not an address"
	if _, _, ok := clientAddr(r, proxies); ok {
		t.Errorf("an unreadable peer was read")
	}
}

func TestParseTrustedProxies(t *testing.T) {
	ps, err := parseTrustedProxies([]string{"10.0.0.0/8", "10.1.2.3/8", "::1", "2001:db8::/32"})
	if err != nil || len(ps) != 4 || ps[1].String() != "10.0.0.0/8" || ps[2].String() != "::1/128" {
		t.Errorf("%v %v", ps, err)
	}
	for _, bad := range []string{"10.0.0.0/33", "example.com", "10.0.0", "fe80::1%eth0", "*"} {
		_, err := parseTrustedProxies([]string{"10.0.0.0/8", bad})
		if want := fmt.Sprintf("Stream.TrustedProxies: %q is not a CIDR", bad); err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("%q: got %v, want an error starting %q", bad, err, want)
		}
	}
}

func TestSourceKey(t *testing.T) {
	for in, want := range map[string]string{
		"198.51.100.9":            "198.51.100.9",
		"2001:db8:1:2:3:4:5:6":    "2001:db8:1:2::/64",
		"2001:db8:1:2:ffff::9999": "2001:db8:1:2::/64",
	} {
		if got := sourceKey(netip.MustParseAddr(in)); got != want {
			t.Errorf("sourceKey(%s) = %s, want %s", in, got, want)
		}
	}
}
