package main

import (
	"net/netip"
	"strings"
	"testing"
)

func TestParseProcNetTCP(t *testing.T) {
	// Lines as the kernel prints them (the header, a listener, two peers,
	// one of them closed by the server, and a socket of another port).
	table := `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 1 1 0000000000000000 100 0 0 10 0
   1: 0100007F:1F90 0200007F:9C40 01 00000000:00000000 00:00000000 00000000  1000        0 2 1 0000000000000000 20 4 30 10 -1
   2: 0100007F:1F90 0300007F:9C41 04 00004000:00000000 01:00000020 00000000  1000        0 0 1 0000000000000000 20 4 30 10 -1
   3: 0100007F:1F91 0200007F:9C40 01 00000000:00000000 00:00000000 00000000  1000        0 3 1 0000000000000000 20 4 30 10 -1
`
	srv := netip.MustParseAddrPort("127.0.0.1:8080")
	got := map[netip.AddrPort]int{}
	parseProcNetTCP([]byte(table), srv, got)
	want := map[netip.AddrPort]int{
		netip.MustParseAddrPort("0.0.0.0:0"):       10,
		netip.MustParseAddrPort("127.0.0.2:40000"): tcpEstablished,
		netip.MustParseAddrPort("127.0.0.3:40001"): 4, // FIN_WAIT1
	}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%v: state %d, want %d", k, got[k], v)
		}
	}
	// IPv6 table: an IPv4-mapped address.
	a, ok := parseProcAddr("0000000000000000FFFF00000100007F:1F90")
	if !ok || a != srv {
		t.Errorf("tcp6 mapped address: %v %v, want %v", a, ok, srv)
	}
}

func TestParseMetrics(t *testing.T) {
	text := `# HELP presence_disconnects_total Streams closed, by reason.
# TYPE presence_disconnects_total counter
presence_disconnects_total{reason="client"} 12
presence_disconnects_total{reason="evicted"} 5
go_goroutines 17
presence_streams_open 5505
weird{path="a b}c"} 3
`
	m, err := parseMetrics(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]float64{evictedSeries: 5, "go_goroutines": 17, "presence_streams_open": 5505, `presence_disconnects_total{reason="client"}`: 12, `weird{path="a b}c"}`: 3} {
		if m[k] != v {
			t.Errorf("%s = %v, want %v (all: %v)", k, m[k], v, m)
		}
	}
}

func TestRosterCountsPeopleAndStreams(t *testing.T) {
	r := newRoster(2)
	r.add(0, "", 1)
	r.add(0, "", 1)
	r.add(0, "aa", 1)
	r.add(0, "aa", 1) // a second tab of the same person
	r.add(1, "aa", 1) // the same person in another room
	r.add(1, "bb", 1)
	r.add(1, "bb", -1)
	got := r.tallies()
	if got[0] != (tally{people: 3, conns: 4}) || got[1] != (tally{people: 1, conns: 1}) {
		t.Errorf("tallies %+v", got)
	}
	if r.open(1, "bb") || !r.open(0, "aa") {
		t.Error("open() wrong")
	}
}
