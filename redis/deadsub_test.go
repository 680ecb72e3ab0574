package redis

import (
	"bytes"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/presence/presence/internal/redistest"
	"github.com/presence/presence/presence"
)

// blackholeProxy forwards TCP to Redis; freezeSubscriptions makes the
// connections that sent SUBSCRIBE silently drop everything both ways, as a
// dead path does (no FIN, no RST).
type blackholeProxy struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []*proxyConn
	wg    sync.WaitGroup
}

type proxyConn struct {
	c, s   net.Conn
	sub    atomic.Bool
	frozen atomic.Bool
}

func startProxy(t *testing.T, target string) *blackholeProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &blackholeProxy{ln: ln}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			pc := &proxyConn{c: c, s: s}
			p.mu.Lock()
			p.conns = append(p.conns, pc)
			p.mu.Unlock()
			p.wg.Add(2)
			go func() { defer p.wg.Done(); pc.pipe(c, s, true) }()
			go func() { defer p.wg.Done(); pc.pipe(s, c, false) }()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		p.mu.Lock()
		for _, pc := range p.conns {
			pc.c.Close()
			pc.s.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	return p
}

func (pc *proxyConn) pipe(from, to net.Conn, fromClient bool) {
	buf := make([]byte, 64<<10)
	for {
		n, err := from.Read(buf)
		if n > 0 {
			if fromClient && bytes.Contains(bytes.ToLower(buf[:n]), []byte("subscribe")) {
				pc.sub.Store(true)
			}
			if !pc.frozen.Load() {
				if _, werr := to.Write(buf[:n]); werr != nil {
					return
				}
			}
		}
		if err != nil {
			if err != io.EOF {
				return
			}
			to.Close()
			return
		}
	}
}

func (p *blackholeProxy) freezeSubscriptions() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, pc := range p.conns {
		if pc.sub.Load() {
			pc.frozen.Store(true)
			n++
		}
	}
	return n
}

// A subscription whose path dies silently (no FIN, no RST) is noticed by a
// ping that gets no answer, and replaced; the node then reads everything
// again. (Found by review: go-redis's PubSub.Ping only sends the PING.)
func TestSilentlyDeadSubscriptionIsReplaced(t *testing.T) {
	srv := redistest.Start(t)
	proxy := startProxy(t, srv.Addr())
	a := startNode(t, srv, "a")
	b := startNodeURL(t, "redis://"+proxy.ln.Addr().String()+"/0", "b")
	a.Join("warm", presence.Member{})
	waitFor(t, 2*time.Second, "b hears a", allAre(1, counts("warm", b)))

	if n := proxy.freezeSubscriptions(); n != 1 {
		t.Fatalf("froze %d subscriptions", n)
	}
	for range 3 {
		a.Join("r", presence.Member{})
	}
	// Silence for pingEvery, then no answer for opTimeout.
	took := waitFor(t, pingEvery+opTimeout+5*time.Second, "b to count a's 3 streams", allAre(3, counts("r", b)))
	t.Logf("b right again %v after its subscription went dead", took.Round(time.Millisecond))
}
