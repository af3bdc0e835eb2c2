package rediscache

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cachekit/cache"
	"github.com/cachekit/cache/driver"
	"github.com/cachekit/cache/internal/redistest"
)

// breakerDriver is a driver on a Redis of the test's own, closed at cleanup.
func breakerDriver(t *testing.T, o Options) (*Driver, *redistest.Server) {
	t.Helper()
	srv := redistest.Start(t)
	o.URL = srv.URL()
	d, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	if err := d.Set(context.Background(), driver.Entry{Key: "warm", Value: []byte(`"v"`)}); err != nil {
		t.Fatal(err)
	}
	return d, srv
}

// openBreaker stops srv and calls Get until the breaker opens. It checks that the calls
// before that are the normal redial errors, and returns how long the breaker took to
// open after the stop.
func openBreaker(t *testing.T, d *Driver, srv *redistest.Server) time.Duration {
	t.Helper()
	ctx := context.Background()
	srv.Stop()
	stopped := time.Now()
	// When the breaker opened, seen from outside: a sequential caller sees it only at
	// its next call, after the redial loop of the call in flight.
	var openedAfter atomic.Int64
	done := make(chan struct{})
	defer close(done)
	go func() {
		for !d.BreakerOpen() {
			select {
			case <-done:
				return
			case <-time.After(100 * time.Microsecond):
			}
		}
		openedAfter.Store(int64(time.Since(stopped)))
	}()
	for i := 0; ; i++ {
		start := time.Now()
		_, _, err := d.Get(ctx, "k")
		took := time.Since(start)
		switch {
		case err == nil:
			t.Fatal("Get on a stopped Redis: no error")
		case errors.Is(err, ErrUnavailable):
			if i == 0 {
				t.Fatalf("the first Get after the stop failed with %v: the breaker was open before any failure", err)
			}
			if !d.BreakerOpen() {
				t.Fatal("ErrUnavailable, but BreakerOpen is false")
			}
			open := time.Duration(openedAfter.Load())
			t.Logf("breaker open %v after the stop; the first ErrUnavailable %v after it, after %d failed Get(s)",
				open.Round(time.Millisecond), time.Since(stopped).Round(time.Millisecond), i)
			return open
		default:
			t.Logf("Get %d before the breaker opened: %v after %v", i, err, took.Round(time.Millisecond))
		}
		if time.Since(stopped) > 10*time.Second {
			t.Fatalf("the breaker did not open within 10 s of the stop: %v", err)
		}
	}
}

func percentile(d []time.Duration, p float64) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[int(float64(len(s)-1)*p)]
}

// TestBreakerFailsFastAndRecovers: with Redis stopped, once the breaker is open, Get and
// Set (and the other guarded commands) fail in well under a millisecond with an error
// matching ErrUnavailable; after a restart, commands go to Redis again within a second.
func TestBreakerFailsFastAndRecovers(t *testing.T) {
	d, srv := breakerDriver(t, Options{})
	ctx := context.Background()
	if open := openBreaker(t, d, srv); open > 5*time.Second {
		t.Errorf("the breaker took %v to open; want about one go-redis redial loop (1.7 s)", open)
	}

	const n = 1000
	for _, op := range []struct {
		name string
		call func() error
	}{
		{"get", func() error { _, _, err := d.Get(ctx, "k"); return err }},
		{"set", func() error { return d.Set(ctx, driver.Entry{Key: "k", Value: []byte(`"v"`), TTL: time.Minute}) }},
	} {
		lat := make([]time.Duration, n)
		for i := range lat {
			start := time.Now()
			err := op.call()
			lat[i] = time.Since(start)
			if !errors.Is(err, ErrUnavailable) || !strings.HasPrefix(err.Error(), "rediscache: "+op.name+" ") {
				t.Fatalf("%s with the breaker open: %v; want a driver error matching ErrUnavailable", op.name, err)
			}
		}
		p50, p99 := percentile(lat, 0.5), percentile(lat, 0.99)
		t.Logf("%s with the breaker open: p50 %v, p99 %v, max %v over %d calls", op.name, p50, p99, percentile(lat, 1), n)
		if p99 > time.Millisecond {
			t.Errorf("%s with the breaker open: p99 %v; want under 1 ms", op.name, p99)
		}
	}
	// The other guarded commands fail at once too.
	others := map[string]func() error{
		"get many": func() error { _, _, err := d.GetMany(ctx, []string{"a", "b"}); return err },
		"set many": func() error {
			return d.SetMany(ctx, []driver.Entry{{Key: "a", Value: []byte("1")}, {Key: "b", Value: []byte("2")}})
		},
		"delete":             func() error { return d.Delete(ctx, "a", "b") },
		"increment":          func() error { _, err := d.Increment(ctx, "n", 1, time.Minute); return err },
		"pull":               func() error { _, _, err := d.Pull(ctx, "k"); return err },
		"list push":          func() error { _, err := d.ListPush(ctx, "l", []any{[]byte(`"a"`)}, false, 0); return err },
		"list push ttl":      func() error { _, err := d.ListPush(ctx, "l", []any{[]byte(`"a"`)}, false, time.Minute); return err },
		"list pop":           func() error { _, _, err := d.ListPop(ctx, "l", false); return err },
		"scan":               func() error { return d.Scan(ctx, "", func(string) bool { return true }) },
		"delete namespace":   func() error { return d.DeleteNamespace(ctx, "ns") },
		"ttl":                func() error { _, _, err := d.TTL(ctx, "k"); return err },
		"compare-and-delete": func() error { _, err := d.CompareAndDelete(ctx, "k", []byte("x")); return err },
		"compare-and-swap": func() error {
			_, err := d.CompareAndSwap(ctx, []byte("x"), driver.Entry{Key: "k", Value: []byte("y")})
			return err
		},
		"create fenced": func() error {
			_, _, err := d.CreateFenced(ctx, driver.Entry{Key: "f", Value: []byte("x"), TTL: time.Second})
			return err
		},
		"watch": func() error { _, err := d.Watch(ctx, "k"); return err },
	}
	for name, call := range others {
		took := time.Hour
		var err error
		for range 3 { // the fastest of three: a GC pause under -race is not the breaker's
			start := time.Now()
			err = call()
			took = min(took, time.Since(start))
		}
		if !errors.Is(err, ErrUnavailable) || took > time.Millisecond {
			t.Errorf("%s with the breaker open: %v after %v; want ErrUnavailable at once", name, err, took)
		}
	}

	srv.Restart(t)
	restarted := time.Now()
	for {
		_, _, err := d.Get(ctx, "k")
		if err == nil {
			break
		}
		if time.Since(restarted) > 5*time.Second {
			t.Fatalf("no Get succeeded within 5 s of the restart: %v", err)
		}
		time.Sleep(time.Millisecond)
	}
	back := time.Since(restarted)
	t.Logf("Get succeeded again %v after the restart", back.Round(time.Millisecond))
	if back > time.Second {
		t.Errorf("commands went to Redis again %v after the restart; want within 1 s", back)
	}
	if d.BreakerOpen() {
		t.Error("BreakerOpen after a successful Get")
	}
}

// TestBreakerThroughTheManager: with the breaker open, the manager's Lock returns an
// error (not contention) and never runs fn, and Remember returns an error.
func TestBreakerThroughTheManager(t *testing.T) {
	d, srv := breakerDriver(t, Options{})
	c, err := cache.New(cache.Config{Drivers: map[string]cache.Driver{"redis": d}, Prefix: "brk"})
	if err != nil {
		t.Fatal(err)
	}
	openBreaker(t, d, srv)
	ctx := context.Background()

	var ran atomic.Bool
	fn := func(context.Context) (int, error) { ran.Store(true); return 1, nil }
	for _, wait := range []time.Duration{0, 2 * time.Second} {
		start := time.Now()
		out, err := cache.LockWith(ctx, c, "job", cache.LockOptions{TTL: time.Second, Wait: wait}, fn)
		took := time.Since(start)
		t.Logf("Lock (Wait %v) with the breaker open: %+v, %v after %v", wait, out, err, took)
		switch {
		case err == nil:
			t.Errorf("Lock (Wait %v) with the breaker open: no error (Acquired %v)", wait, out.Acquired)
		case errors.Is(err, cache.ErrNotAcquired), errors.Is(err, cache.ErrWaitTimeout):
			t.Errorf("Lock (Wait %v) with the breaker open reads as contention: %v", wait, err)
		case !errors.Is(err, ErrUnavailable):
			t.Errorf("Lock (Wait %v) with the breaker open: %v; want it to match ErrUnavailable", wait, err)
		}
		if out.Acquired {
			t.Errorf("Lock (Wait %v) reported Acquired", wait)
		}
		if took > 100*time.Millisecond {
			t.Errorf("Lock (Wait %v) took %v with the breaker open; want at once", wait, took)
		}
	}
	if ran.Load() {
		t.Error("fn ran while the breaker was open")
	}

	v, err := cache.Remember(ctx, c, "r", time.Minute, fn)
	t.Logf("Remember with the breaker open: %v, %v", v, err)
	if !errors.Is(err, ErrUnavailable) {
		t.Errorf("Remember with the breaker open: %v, %v; want an error matching ErrUnavailable", v, err)
	}
}

// TestBreakerIgnoresRepliesAndCancellation: replies of Redis's (WRONGTYPE, NOSCRIPT, a
// miss, a lock held by another) and a caller's cancelled context never make the
// breaker check, even with a probe that would fail; a real failure does.
func TestBreakerIgnoresRepliesAndCancellation(t *testing.T) {
	d, srv := breakerDriver(t, Options{})
	var probes atomic.Int32
	d.brk.probe = func(context.Context) error { probes.Add(1); return errors.New("probe fails on purpose") }
	ctx := context.Background()

	if err := d.Client().HSet(ctx, "h", "f", "v").Err(); err != nil {
		t.Fatal(err)
	}
	// A new script: the first run gets NOSCRIPT and falls back to EVAL.
	if err := d.Client().ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	for range 50 {
		if _, _, err := d.Get(ctx, "h"); !errors.Is(err, ErrWrongType) {
			t.Fatalf("Get of a hash: %v; want ErrWrongType", err)
		}
		if _, _, err := d.GetMany(ctx, []string{"h", "missing"}); !errors.Is(err, ErrWrongType) {
			t.Fatalf("GetMany with a hash: %v; want ErrWrongType", err)
		}
		if _, err := d.Increment(ctx, "h", 1, time.Minute); !errors.Is(err, driver.ErrNotInteger) {
			t.Fatalf("Increment of a hash: %v", err)
		}
		if _, found, err := d.Get(ctx, "missing"); found || err != nil {
			t.Fatalf("Get of a missing key: %v, %v", found, err)
		}
		if ok, err := d.SetIf(ctx, driver.Entry{Key: "warm", Value: []byte("x")}, driver.IfAbsent); ok || err != nil {
			t.Fatalf("SetIf on a held key: %v, %v", ok, err)
		}
		if err := d.Client().ScriptFlush(ctx).Err(); err != nil {
			t.Fatal(err)
		}
	}

	// Redis stopped, and every caller gives up: a cancelled context says nothing about
	// Redis.
	srv.Stop()
	for range 5 {
		cctx, cancel := context.WithCancel(ctx)
		time.AfterFunc(20*time.Millisecond, cancel)
		if _, _, err := d.Get(cctx, "k"); err == nil || errors.Is(err, ErrUnavailable) {
			t.Fatalf("Get with a context cancelled mid-flight: %v; want the redial error", err)
		}
		cancel()
	}
	if n := probes.Load(); n != 0 || d.BreakerOpen() {
		t.Fatalf("replies and cancellations made the breaker check %d times (open: %v)", n, d.BreakerOpen())
	}

	// A failure of Redis's own does.
	if _, _, err := d.Get(ctx, "k"); err == nil || errors.Is(err, ErrUnavailable) {
		t.Fatalf("Get on a stopped Redis: %v; want the redial error", err)
	}
	deadline := time.Now().Add(2 * time.Second)
	for !d.BreakerOpen() && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if !d.BreakerOpen() || probes.Load() == 0 {
		t.Fatalf("a failed Get did not open the breaker (probes %d)", probes.Load())
	}
}

// TestBreakerDoesNotOpenWhileRedisAnswers: a check whose probe fails does not open the
// breaker when other commands got answers meanwhile (a probe lost in a glitch).
func TestBreakerDoesNotOpenWhileRedisAnswers(t *testing.T) {
	d, _ := breakerDriver(t, Options{})
	ctx := context.Background()
	release := make(chan struct{})
	d.brk.probe = func(context.Context) error { <-release; return errors.New("probe fails on purpose") }
	d.brk.check()
	if _, _, err := d.Get(ctx, "warm"); err != nil {
		t.Fatal(err)
	}
	close(release)
	for d.brk.probing.Load() {
		time.Sleep(time.Millisecond)
	}
	if d.BreakerOpen() {
		t.Fatal("the breaker opened although a Get was answered during the check")
	}
}

// TestBreakerOff: with Off, a stopped Redis gives the redial errors every time.
func TestBreakerOff(t *testing.T) {
	d, srv := breakerDriver(t, Options{Breaker: BreakerOptions{Off: true}})
	srv.Stop()
	for range 2 {
		if _, _, err := d.Get(context.Background(), "k"); err == nil || errors.Is(err, ErrUnavailable) {
			t.Fatalf("Get with the breaker off: %v; want the redial error", err)
		}
	}
	if d.BreakerOpen() {
		t.Fatal("BreakerOpen with Off")
	}
}

// TestBreakerClusterOneNodeDown: on a Cluster, a master that is down fails the commands
// for its keys as without a breaker; the breaker stays closed and the other masters'
// keys work.
func TestBreakerClusterOneNodeDown(t *testing.T) {
	cl := redistest.StartCluster(t)
	d, err := New(Options{URL: cl.URL()})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = d.Close()
		// The stopped master's pools have failed more dials than their PoolSize, so go-redis
		// redials in a goroutine of its own, once a second, until it sees the pool closed.
		time.Sleep(1100 * time.Millisecond)
	}()
	ctx := context.Background()
	keys := make([]string, 30)
	for i := range keys {
		keys[i] = "k" + string(rune('a'+i%26)) + strings.Repeat("x", i/26)
		if err := d.Set(ctx, driver.Entry{Key: keys[i], Value: []byte("1")}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := cl.StopOwnerOf(keys[0]); err != nil {
		t.Fatal(err)
	}
	var failed, ok int
	for range 3 {
		for _, k := range keys {
			cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			_, _, err := d.Get(cctx, k)
			cancel()
			if errors.Is(err, ErrUnavailable) {
				t.Fatalf("Get %q: %v: one master down opened the breaker for all", k, err)
			}
			if err != nil {
				failed++
			} else {
				ok++
			}
		}
	}
	t.Logf("one master of three down: %d Gets failed, %d succeeded, breaker open: %v", failed, ok, d.BreakerOpen())
	if failed == 0 || ok == 0 {
		t.Fatalf("want failures for the stopped master's keys and successes for the others: %d failed, %d ok", failed, ok)
	}
}
