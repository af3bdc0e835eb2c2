package faultproxy

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// startEcho starts a TCP echo server on loopback. It answers end of stream with
// end of stream. The returned stop (also run at cleanup) closes it and waits
// for its goroutines.
func startEcho(t *testing.T) (addr string, stop func()) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns = make(map[net.Conn]struct{})
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[c] = struct{}{}
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, _ = io.Copy(c, c)
				_ = c.(*net.TCPConn).CloseWrite()
				_ = c.Close()
				mu.Lock()
				delete(conns, c)
				mu.Unlock()
			}()
		}
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			_ = ln.Close()
			mu.Lock()
			for c := range conns {
				_ = c.Close()
			}
			mu.Unlock()
			wg.Wait()
		})
	}
	t.Cleanup(stop)
	return ln.Addr().String(), stop
}

// hang bounds every wait for something that happens at once on a working proxy (a dial,
// a read of bytes that were sent, a count that catches up): a hang detector, not a
// latency bound, that only a hang reaches however busy the machine is. Reads that must
// time out (nothing may come) use short deadlines of their own.
const hang = time.Minute

func newProxy(t *testing.T, target string) *Proxy {
	t.Helper()
	p, err := New(target)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

func dial(t *testing.T, addr string) *net.TCPConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, hang)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c.(*net.TCPConn)
}

// readN reads exactly n bytes within d.
func readN(c net.Conn, n int, d time.Duration) (string, error) {
	_ = c.SetReadDeadline(time.Now().Add(d))
	buf := make([]byte, n)
	_, err := io.ReadFull(c, buf)
	return string(buf), err
}

func roundtrip(t *testing.T, c net.Conn, msg string) {
	t.Helper()
	if _, err := c.Write([]byte(msg)); err != nil {
		t.Fatalf("write: %v", err)
	}
	got, err := readN(c, len(msg), hang)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if got != msg {
		t.Fatalf("read %q, want %q", got, msg)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// refused checks that a connection to addr ends at once: either the dial
// fails or the first read sees end of stream or a reset, not a timeout.
func refused(t *testing.T, addr string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, hang)
	if err != nil {
		if isTimeout(err) {
			t.Fatalf("dial %s: %v, want a refusal", addr, err)
		}
		return // the RST came before the handshake was done
	}
	defer c.Close()
	_, _ = c.Write([]byte("x"))
	if _, err := readN(c, 1, hang); err == nil || isTimeout(err) {
		t.Fatalf("read on a connection to %s: %v, want EOF or reset", addr, err)
	}
}

// eventually polls cond until it holds, and fails after hang.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(hang)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestForward(t *testing.T) {
	target, _ := startEcho(t)
	p := newProxy(t, target)
	if p.Target() != target {
		t.Fatalf("Target() = %q, want %q", p.Target(), target)
	}
	c := dial(t, p.Addr())
	roundtrip(t, c, "hello")
	roundtrip(t, c, "world")
	if n := p.Conns(); n != 1 {
		t.Fatalf("Conns() = %d, want 1", n)
	}
	eventually(t, "20 bytes are counted", func() bool { return p.Stats().BytesForwarded == 20 })

	// End of stream goes through in both directions, and the connection is
	// then gone.
	if _, err := c.Write([]byte("bye")); err != nil {
		t.Fatal(err)
	}
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(hang))
	rest, err := io.ReadAll(c)
	if err != nil || string(rest) != "bye" {
		t.Fatalf("after CloseWrite read %q, %v; want \"bye\", EOF", rest, err)
	}
	eventually(t, "no connection is open", func() bool { return p.Conns() == 0 })
	if s := p.Stats(); s.Accepted != 1 {
		t.Fatalf("Accepted = %d, want 1", s.Accepted)
	}
}

func TestFreezeHoldsBytesUntilThaw(t *testing.T) {
	target, _ := startEcho(t)
	p := newProxy(t, target)
	open := dial(t, p.Addr())
	roundtrip(t, open, "before")

	p.Freeze()
	p.Freeze() // counted once
	for _, s := range []string{"one ", "two ", "three"} {
		if _, err := open.Write([]byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	// A connection made during the freeze is accepted, but nothing is forwarded.
	fresh := dial(t, p.Addr())
	if _, err := fresh.Write([]byte("fresh")); err != nil {
		t.Fatal(err)
	}
	for _, c := range []net.Conn{open, fresh} {
		if _, err := readN(c, 1, 150*time.Millisecond); !isTimeout(err) {
			t.Fatalf("read while frozen: %v, want a timeout", err)
		}
	}
	if n := p.Conns(); n != 2 {
		t.Fatalf("Conns() while frozen = %d, want 2", n)
	}

	p.Thaw()
	if got, err := readN(open, len("one two three"), hang); err != nil || got != "one two three" {
		t.Fatalf("after Thaw read %q, %v", got, err)
	}
	if got, err := readN(fresh, len("fresh"), hang); err != nil || got != "fresh" {
		t.Fatalf("new connection after Thaw read %q, %v", got, err)
	}
	roundtrip(t, open, "after")
	if s := p.Stats(); s.Freezes != 1 {
		t.Fatalf("Freezes = %d, want 1", s.Freezes)
	}
}

func TestDelay(t *testing.T) {
	target, _ := startEcho(t)
	p := newProxy(t, target)
	c := dial(t, p.Addr())
	roundtrip(t, c, "warm")

	const d = 100 * time.Millisecond
	p.Delay(d)
	start := time.Now()
	for _, s := range []string{"a", "b", "c"} {
		if _, err := c.Write([]byte(s)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	got, err := readN(c, 3, hang)
	elapsed := time.Since(start)
	if err != nil || got != "abc" {
		t.Fatalf("delayed read %q, %v; want \"abc\"", got, err)
	}
	// Each byte crosses the proxy twice, so the last one comes back at least
	// 2d after the first was written (a lower bound: a busy machine only adds).
	if elapsed < 2*d {
		t.Fatalf("echo through a %v delay took %v, want at least %v", d, elapsed, 2*d)
	}
	if s := p.Stats(); s.Delays < 2 {
		t.Fatalf("Delays = %d, want at least 2", s.Delays)
	}

	// Without the delay no chunk is held back: the count stays.
	p.Delay(0)
	held := p.Stats().Delays
	roundtrip(t, c, "quick")
	if s := p.Stats(); s.Delays != held {
		t.Fatalf("Delays went from %d to %d after Delay(0); want no chunk held back", held, s.Delays)
	}
}

func TestDrop(t *testing.T) {
	target, _ := startEcho(t)
	p := newProxy(t, target)
	open := dial(t, p.Addr())
	roundtrip(t, open, "before")

	p.Drop(true)
	// New connections are killed at once.
	refused(t, p.Addr())
	// Open connections stay open, but what they send is lost.
	if _, err := open.Write([]byte("lost")); err != nil {
		t.Fatal(err)
	}
	if _, err := readN(open, 1, 150*time.Millisecond); !isTimeout(err) {
		t.Fatalf("read during Drop: %v, want a timeout", err)
	}

	p.Drop(false)
	roundtrip(t, open, "after")
	roundtrip(t, dial(t, p.Addr()), "new")
	s := p.Stats()
	if s.Drops != 1 {
		t.Fatalf("Drops = %d, want 1", s.Drops)
	}
	if s.DroppedBytes != int64(len("lost")) {
		t.Fatalf("DroppedBytes = %d, want %d", s.DroppedBytes, len("lost"))
	}
}

func TestReset(t *testing.T) {
	target, _ := startEcho(t)
	p := newProxy(t, target)
	a := dial(t, p.Addr())
	b := dial(t, p.Addr())
	roundtrip(t, a, "a")
	roundtrip(t, b, "b")

	p.Freeze() // a reset also ends connections that are frozen
	p.Reset()
	for _, c := range []net.Conn{a, b} {
		if _, err := readN(c, 1, hang); !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("read after Reset: %v, want ECONNRESET", err)
		}
	}
	if n := p.Conns(); n != 0 {
		t.Fatalf("Conns() after Reset = %d, want 0", n)
	}
	if s := p.Stats(); s.Resets != 2 {
		t.Fatalf("Resets = %d, want 2", s.Resets)
	}
	p.Thaw()
	roundtrip(t, dial(t, p.Addr()), "again")
}

func TestTargetDown(t *testing.T) {
	target, stop := startEcho(t)
	stop()
	p := newProxy(t, target)
	refused(t, p.Addr())
	eventually(t, "no connection is open", func() bool { return p.Conns() == 0 })
}

func TestSetDial(t *testing.T) {
	targetA, _ := startEcho(t)
	targetB, _ := startEcho(t)
	targetC, _ := startEcho(t)
	s := NewSet()
	t.Cleanup(func() { _ = s.Close() })
	ctx := context.Background()

	dialSet := func(addr string) net.Conn {
		t.Helper()
		c, err := s.Dial(ctx, "tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	a1, a2, b := dialSet(targetA), dialSet(targetA), dialSet(targetB)
	roundtrip(t, a1, "a1")
	roundtrip(t, a2, "a2")
	roundtrip(t, b, "b")
	ps := s.Proxies()
	if len(ps) != 2 || ps[0].Target() != targetA || ps[1].Target() != targetB {
		t.Fatalf("Proxies() = %v, want one for %s then one for %s", ps, targetA, targetB)
	}
	if n := ps[0].Conns(); n != 2 {
		t.Fatalf("proxy for A has %d connections, want 2", n)
	}

	// The set's state reaches proxies made after it was set.
	s.Freeze()
	s.Delay(10 * time.Millisecond)
	c := dialSet(targetC)
	for _, conn := range []net.Conn{a1, b, c} {
		if _, err := conn.Write([]byte("z")); err != nil {
			t.Fatal(err)
		}
		if _, err := readN(conn, 1, 100*time.Millisecond); !isTimeout(err) {
			t.Fatalf("read while the set is frozen: %v, want a timeout", err)
		}
	}
	// The third proxy read "z" while the delay was set, whenever its reader ran.
	eventually(t, "the third proxy held a chunk back for the delay", func() bool { return s.Proxies()[2].Stats().Delays > 0 })
	s.Thaw()
	s.Delay(0)
	for _, conn := range []net.Conn{a1, b, c} {
		if got, err := readN(conn, 1, hang); err != nil || got != "z" {
			t.Fatalf("after Thaw read %q, %v", got, err)
		}
	}
	if d := s.Proxies()[2].Stats().Delays; d == 0 {
		t.Fatal("the delay set before the third proxy existed did not reach it")
	}

	s.Reset()
	if _, err := readN(a2, 1, hang); !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("read after Set.Reset: %v, want ECONNRESET", err)
	}

	s.Drop(true)
	refused(t, s.Proxies()[0].Addr())
	s.Drop(false)
	roundtrip(t, dialSet(targetB), "ok")

	if _, err := s.Dial(ctx, "unix", "/tmp/x.sock"); err == nil {
		t.Fatal("Dial over unix succeeded")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Dial(ctx, "tcp", targetA); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Dial after Close: %v, want net.ErrClosed", err)
	}
	if _, err := s.Route(targetA); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Route after Close: %v, want net.ErrClosed", err)
	}
}

func TestRoutes(t *testing.T) {
	routed, _ := startEcho(t)
	direct, _ := startEcho(t)
	s := NewSet()
	t.Cleanup(func() { _ = s.Close() })

	via, err := s.Route(routed)
	if err != nil {
		t.Fatal(err)
	}
	if again, err := s.Route(routed); err != nil || again != via {
		t.Fatalf("second Route = %q, %v; want %q", again, err, via)
	}

	// What a parent puts in the environment of a child...
	const env = "FAULTPROXY_TEST_ROUTES"
	t.Setenv(env, EncodeRoutes(map[string]string{routed: via}))
	// ...and what the child makes of it.
	routes, err := DecodeRoutes(os.Getenv(env))
	if err != nil {
		t.Fatal(err)
	}
	if len(routes) != 1 || routes[routed] != via {
		t.Fatalf("DecodeRoutes(EncodeRoutes(...)) = %v", routes)
	}
	dialer := Dialer(routes)
	ctx := context.Background()
	c, err := dialer(ctx, "tcp", routed)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	roundtrip(t, c, "routed")
	p := s.Proxies()[0]
	if n := p.Conns(); n != 1 {
		t.Fatalf("the proxy has %d connections, want 1", n)
	}
	d, err := dialer(ctx, "tcp", direct)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	roundtrip(t, d, "direct")
	if n, a := p.Conns(), p.Stats().Accepted; n != 1 || a != 1 {
		t.Fatalf("an unrouted dial went through the proxy (Conns %d, Accepted %d)", n, a)
	}

	// The route follows the proxy's faults.
	s.Freeze()
	roundtripTimeout := func() error {
		if _, err := c.Write([]byte("f")); err != nil {
			return err
		}
		_, err := readN(c, 1, 100*time.Millisecond)
		return err
	}
	if err := roundtripTimeout(); !isTimeout(err) {
		t.Fatalf("routed read while frozen: %v, want a timeout", err)
	}
	s.Thaw()

	for _, in := range []map[string]string{nil, {}} {
		if enc := EncodeRoutes(in); enc != "" {
			t.Fatalf("EncodeRoutes(%v) = %q, want \"\"", in, enc)
		}
	}
	for _, enc := range []string{"", "null"} {
		if m, err := DecodeRoutes(enc); err != nil || m == nil || len(m) != 0 {
			t.Fatalf("DecodeRoutes(%q) = %v, %v; want an empty map", enc, m, err)
		}
	}
	if _, err := DecodeRoutes("a=b"); err == nil {
		t.Fatal("DecodeRoutes accepted garbage")
	}
}

// TestChaos injects every fault concurrently with traffic, for the race
// detector, and checks that the proxy works normally afterwards.
func TestChaos(t *testing.T) {
	target, _ := startEcho(t)
	p := newProxy(t, target)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				c, err := net.DialTimeout("tcp", p.Addr(), time.Second)
				if err != nil {
					continue
				}
				for range 5 {
					if _, err := c.Write([]byte("chaos")); err != nil {
						break
					}
					if _, err := readN(c, 5, 20*time.Millisecond); err != nil {
						break
					}
				}
				_ = c.Close()
			}
		}()
	}
	faults := []func(){
		p.Freeze, p.Thaw, p.Reset,
		func() { p.Delay(time.Millisecond) }, func() { p.Delay(0) },
		func() { p.Drop(true) }, func() { p.Drop(false) },
		func() { _ = p.Conns(); _ = p.Stats() },
	}
	// Every fault runs 12 times on each of two goroutines, whatever the scheduler does,
	// with traffic in between.
	var fwg sync.WaitGroup
	for i := range 2 {
		fwg.Add(1)
		go func() {
			defer fwg.Done()
			for j := i; j < i+12*len(faults); j++ {
				faults[j%len(faults)]()
				time.Sleep(3 * time.Millisecond)
			}
		}()
	}
	fwg.Wait()
	close(stop)
	wg.Wait()

	p.Thaw()
	p.Delay(0)
	p.Drop(false)
	roundtrip(t, dial(t, p.Addr()), "calm")
	s := p.Stats()
	if s.Freezes == 0 || s.Resets+s.Drops == 0 {
		t.Fatalf("no fault was injected: %+v", s)
	}
	t.Logf("%+v", s)
}

// TestCloseLeavesNothing closes a proxy with connections in every state and
// checks that no goroutine is left and that clients see their connections end.
func TestCloseLeavesNothing(t *testing.T) {
	target, stopEcho := startEcho(t)
	p, err := New(target)
	if err != nil {
		t.Fatal(err)
	}
	idle := dial(t, p.Addr())
	roundtrip(t, idle, "idle")
	p.Delay(time.Hour)
	delayed := dial(t, p.Addr())
	if _, err := delayed.Write([]byte("delayed")); err != nil {
		t.Fatal(err)
	}
	p.Delay(0)
	p.Freeze()
	frozen := dial(t, p.Addr())
	if _, err := frozen.Write([]byte("frozen")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "3 connections are open", func() bool { return p.Conns() == 3 })

	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if n := p.Conns(); n != 0 {
		t.Fatalf("Conns() after Close = %d", n)
	}
	for _, c := range []net.Conn{idle, delayed, frozen} {
		if _, err := readN(c, 1, hang); err == nil || isTimeout(err) {
			t.Fatalf("read after Close: %v, want EOF or reset", err)
		}
	}
	if _, err := net.DialTimeout("tcp", p.Addr(), time.Second); err == nil {
		t.Fatal("dial after Close succeeded")
	}
	// Fault calls on a closed proxy are harmless.
	p.Thaw()
	p.Reset()
	stopEcho()
	goleak.VerifyNone(t)
}
