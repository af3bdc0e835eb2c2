package rediscache_test

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cachekit/cache/drivers/rediscache"
	"github.com/cachekit/cache/internal/testkit/redistest"
)

// freezeProxy is a TCP proxy in front of a Redis that can stop forwarding bytes while
// keeping every connection open, as a frozen server or a half-open connection would: a
// client's write succeeds and its read waits for a reply that never comes.
type freezeProxy struct {
	l      net.Listener
	target string

	mu     sync.Mutex
	cond   *sync.Cond
	frozen bool
	closed bool
	conns  []net.Conn
	wg     sync.WaitGroup
}

func startFreezeProxy(t *testing.T, target string) *freezeProxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &freezeProxy{l: l, target: target}
	p.cond = sync.NewCond(&p.mu)
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

func (p *freezeProxy) addr() string { return p.l.Addr().String() }

func (p *freezeProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			c.Close()
			s.Close()
			return
		}
		p.conns = append(p.conns, c, s)
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pipe(s, c)
		go p.pipe(c, s)
	}
}

// pipe copies src to dst, holding every chunk while the proxy is frozen.
func (p *freezeProxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	defer dst.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			for p.frozen && !p.closed {
				p.cond.Wait()
			}
			closed := p.closed
			p.mu.Unlock()
			if closed {
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				src.Close()
			}
			return
		}
	}
}

func (p *freezeProxy) freeze(on bool) {
	p.mu.Lock()
	p.frozen = on
	p.cond.Broadcast()
	p.mu.Unlock()
}

func (p *freezeProxy) close() {
	p.l.Close()
	p.mu.Lock()
	p.closed = true
	p.cond.Broadcast()
	for _, c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// TestRenewalHonoursDeadlineOnFrozenConnection: lock upkeep runs on the driver's lock
// client, which has ContextTimeoutEnabled even when the client it was built from does
// not (go-redis's default). A renewal (Extend) and a release (CompareAndDelete) through a
// connection that stops answering return at their context's deadline instead of after
// the client's ReadTimeout and its retries. The client's timeouts are two minutes here, so
// that only the deadline can end the calls before the one-minute hang detector: no
// stopwatch bound.
func TestRenewalHonoursDeadlineOnFrozenConnection(t *testing.T) {
	srv := redistest.Start(t)
	if srv.Kind() != redistest.KindRedisServer {
		t.Skip("needs redis-server")
	}
	px := startFreezeProxy(t, srv.Addr())
	rdb := redis.NewClient(&redis.Options{Addr: px.addr(), ReadTimeout: 2 * time.Minute, WriteTimeout: 2 * time.Minute}) // ContextTimeoutEnabled: false
	t.Cleanup(func() { _ = rdb.Close() })
	d := newDriver(t, rediscache.Options{Client: rdb})
	ctx := context.Background()
	key := scope("frozen")
	if err := rdb.Set(ctx, key, "tok", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	// Warm the lock client's pool through the proxy.
	if ok, err := d.Extend(ctx, key, []byte("tok"), time.Minute); err != nil || !ok {
		t.Fatalf("Extend before the freeze: %v, %v", ok, err)
	}
	px.freeze(true)
	defer px.freeze(false)

	const deadline = 200 * time.Millisecond
	for _, op := range []struct {
		name string
		f    func(context.Context) (bool, error)
	}{
		{"Extend", func(ctx context.Context) (bool, error) { return d.Extend(ctx, key, []byte("tok"), time.Minute) }},
		{"CompareAndDelete", func(ctx context.Context) (bool, error) { return d.CompareAndDelete(ctx, key, []byte("tok")) }},
	} {
		start := time.Now()
		cctx, cancel := context.WithTimeout(ctx, deadline)
		ok, err := op.f(cctx)
		took := time.Since(start)
		cancel()
		t.Logf("%s through a frozen connection, ctx deadline %v: returned after %v: %v, %v", op.name, deadline, took.Round(time.Millisecond), ok, err)
		if err == nil {
			t.Fatalf("%s through a frozen connection: no error", op.name)
		}
		if took < deadline || took > time.Minute { // time.Minute: a hang detector
			t.Fatalf("%s returned after %v; want at its ctx deadline %v", op.name, took, deadline)
		}
	}
	px.freeze(false)
	// Once the proxy forwards again, the lock client works again. (The held commands
	// reach Redis at the thaw, so the release may have deleted the key: only the error
	// counts here.)
	var err error
	for range 50 {
		if _, err = d.Extend(ctx, key, []byte("tok"), time.Minute); err == nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("Extend after the thaw: %v", err)
}
