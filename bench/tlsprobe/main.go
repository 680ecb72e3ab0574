// Command tlsprobe measures what a stream over TLS (HTTP/1.1) costs a
// running presence service: it reads the service's RSS, opens -n streams
// over TLS, one connection each, from several 127.0.0.x source addresses,
// waits until each has its first count, and reads the RSS again. The
// bench's targets speak plain HTTP; this is the TLS figure of the
// benchmark docs.
//
//	go run . --tls-cert cert.pem --tls-key key.pem --addr 127.0.0.1:8443 &
//	go run ./bench/tlsprobe -addr 127.0.0.1:8443 -pid $! -n 5000
package main

import (
	"bufio"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"

	"github.com/presence/presence/bench/proc"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8443", "the service's address (it serves TLS)")
	pid := flag.Int("pid", 0, "the service's process id, for its RSS")
	n := flag.Int("n", 5000, "streams to open")
	sources := flag.Int("sources", 4, "source addresses 127.0.0.2 and on (about 28,000 ports each)")
	flag.Parse()
	if err := run(*addr, *pid, *n, *sources); err != nil {
		fmt.Fprintln(os.Stderr, "tlsprobe:", err)
		os.Exit(1)
	}
}

func run(addr string, pid, n, sources int) error {
	if pid <= 0 || n <= 0 || sources <= 0 || sources > 250 {
		return errors.New("-pid, -n and -sources (at most 250) must be positive")
	}
	before, err := proc.RSS(pid)
	if err != nil {
		return err
	}
	// The probe checks no certificate: it measures, it does not trust.
	cfg := &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}}
	conns := make([]*tls.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	start := time.Now()
	for i := range n {
		d := &net.Dialer{Timeout: 10 * time.Second, LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(2+i%sources))}}
		c, err := tls.DialWithDialer(d, "tcp", addr, cfg)
		if err != nil {
			return fmt.Errorf("stream %d: %w", i, err)
		}
		conns = append(conns, c)
		if _, err := io.WriteString(c, "GET /events HTTP/1.1\r\nHost: "+addr+"\r\nAccept: text/event-stream\r\n\r\n"); err != nil {
			return fmt.Errorf("stream %d: %w", i, err)
		}
	}
	for i, c := range conns {
		r := bufio.NewReader(c)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return fmt.Errorf("stream %d: %w", i, err)
			}
			if strings.HasPrefix(line, "data: ") {
				break
			}
		}
		go func() { _, _ = io.Copy(io.Discard, r) }() // heartbeats and counts, read as a browser would
	}
	opened := time.Since(start)
	time.Sleep(3 * time.Second) // the last counts of the ramp, and their writes, go out
	after, err := proc.RSS(pid)
	if err != nil {
		return err
	}
	fmt.Printf("%d TLS streams opened in %.1f s: RSS %d KiB before, %d KiB after, %.1f KiB per stream\n",
		n, opened.Seconds(), before, after, float64(after-before)/float64(n))
	return nil
}
