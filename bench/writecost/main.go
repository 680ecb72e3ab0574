// Command writecost measures what one small write(2) to a loopback TCP
// socket costs the writing process, whose reader is another process: the
// floor under any way of delivering an update, since every way ends in a
// write. It opens -n connections to a child process of itself that reads
// them all, then for each of its rounds writes -rate events a second,
// round robin over the connections, k events to a write, for -duration,
// and reads its own CPU time (user and system). A round with no writes
// measures what the pacing costs; the others are reported net of it.
//
//	go run ./bench/writecost
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"time"
)

// event is a /watch update as the service writes it.
const event = "event: presence\ndata: {\"room\":\"room-123\",\"people\":12,\"connections\":13}\n\n"

func main() {
	if len(os.Args) == 4 && os.Args[1] == "-reader" {
		if err := read(os.Args[2], os.Args[3]); err != nil {
			fmt.Fprintln(os.Stderr, "writecost reader:", err)
			os.Exit(1)
		}
		return
	}
	n := flag.Int("n", 2000, "connections")
	rate := flag.Int("rate", 16000, "events written a second")
	d := flag.Duration("duration", 5*time.Second, "length of each round")
	flag.Parse()
	if err := run(*n, *rate, *d, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "writecost:", err)
		os.Exit(1)
	}
}

func run(n, rate int, d time.Duration, out io.Writer) error {
	if n <= 0 || rate < 1000 || d <= 0 {
		return errors.New("-n and -duration must be positive, -rate at least 1000")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer ln.Close()
	self, err := os.Executable()
	if err != nil {
		return err
	}
	reader := exec.Command(self, "-reader", ln.Addr().String(), strconv.Itoa(n))
	reader.Stderr = os.Stderr
	if err := reader.Start(); err != nil {
		return err
	}
	defer reader.Wait()
	defer reader.Process.Kill()
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for len(conns) < n {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		conns = append(conns, c)
	}
	fmt.Fprintf(out, "%d connections, %d events a second, %v a round, one %d-byte event: %q\n", n, rate, d, len(event), event)
	var base time.Duration // CPU of a round with no writes
	for _, k := range []int{0, 1, 2, 4, 0, 1, 2, 4} {
		writes, cpu, err := round(conns, rate, k, d)
		if err != nil {
			return err
		}
		if k == 0 {
			base = cpu
			fmt.Fprintf(out, "no writes: %v of CPU\n", cpu.Round(time.Millisecond))
			continue
		}
		per := float64((cpu - base).Nanoseconds()) / 1000 / float64(writes)
		fmt.Fprintf(out, "%d event(s) a write: %d writes, %.2f µs a write, %.2f µs an event (net of the round with no writes)\n", k, writes, per, per/float64(k))
	}
	return nil
}

// round writes rate events a second, k to a write, for d, paced by a 1 ms
// ticker, and returns the writes made and this process's CPU meanwhile.
func round(conns []net.Conn, rate, k int, d time.Duration) (writes int, cpu time.Duration, err error) {
	var msg []byte
	for range k {
		msg = append(msg, event...)
	}
	perTick := 0
	if k > 0 {
		perTick = rate / 1000 / k
	}
	t := time.NewTicker(time.Millisecond)
	defer t.Stop()
	start, c0 := time.Now(), cpuTime()
	for time.Since(start) < d {
		<-t.C
		for range perTick {
			if _, err := conns[writes%len(conns)].Write(msg); err != nil {
				return 0, 0, err
			}
			writes++
		}
	}
	return writes, cpuTime() - c0, nil
}

// cpuTime is this process's user and system CPU so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// read is the reader process: it dials addr n times and reads every
// connection until its parent closes them or goes.
func read(addr, count string) error {
	n, err := strconv.Atoi(count)
	if err != nil {
		return err
	}
	done := make(chan struct{}, n)
	for range n {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return err
		}
		go func() {
			io.Copy(io.Discard, c)
			done <- struct{}{}
		}()
	}
	for range n {
		<-done
	}
	return nil
}
