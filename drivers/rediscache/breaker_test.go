package rediscache

import (
	"context"
	"errors"
	"fmt"
	"github.com/redis/go-redis/v9"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cachekit/cache"
	"github.com/cachekit/cache/driver"
	"github.com/cachekit/cache/internal/testkit/redistest"
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

// dialCounter counts the dials of a client built with its Dial as Dialer, the lock
// client's and the breaker's probe's included (they copy the client's options).
type dialCounter struct{ n atomic.Int64 }

func (c *dialCounter) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	c.n.Add(1)
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
}

// countingDriver is a driver on a Redis of the test's own, through a client whose dials
// are counted; both are closed at cleanup. o.Breaker.Cooldown defaults to a minute
// here: the breaker's next probe while open then never falls within a test, and the
// dials counted are the calls' own and the first probe's.
func countingDriver(t *testing.T, o Options) (*Driver, *redistest.Server, *dialCounter) {
	t.Helper()
	srv := redistest.Start(t)
	dials := new(dialCounter)
	client := redis.NewClient(&redis.Options{Addr: srv.Addr(), Dialer: dials.Dial, ContextTimeoutEnabled: true})
	if o.Breaker.Cooldown == 0 {
		o.Breaker.Cooldown = time.Minute
	}
	o.Client = client
	d, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close(); _ = client.Close() })
	if err := d.Set(context.Background(), driver.Entry{Key: "warm", Value: []byte(`"v"`)}); err != nil {
		t.Fatal(err)
	}
	return d, srv, dials
}

// openBreaker stops srv and calls Get once: that call fails with go-redis's redial
// error, not ErrUnavailable, and it returns only once the breaker has decided, so the
// breaker is open when it returns.
func openBreaker(t *testing.T, d *Driver, srv *redistest.Server) {
	t.Helper()
	srv.Stop()
	_, _, err := d.Get(context.Background(), "k")
	switch {
	case err == nil:
		t.Fatal("Get on a stopped Redis: no error")
	case errors.Is(err, ErrUnavailable):
		t.Fatalf("the first Get after the stop failed with %v: the breaker was open before any failure", err)
	case !d.BreakerOpen():
		t.Fatalf("the first Get after the stop returned (%v) with the breaker still closed", err)
	}
	t.Logf("the first Get after the stop: %v; the breaker is open", err)
}

// TestBreakerSequentialCallerPaysOnce: after Redis stops, the call that meets the outage
// returns with the breaker open, and the next call, from the same goroutine, fails with
// ErrUnavailable without a dial.
func TestBreakerSequentialCallerPaysOnce(t *testing.T) {
	d, srv, dials := countingDriver(t, Options{})
	ctx := context.Background()
	before := dials.n.Load()
	openBreaker(t, d, srv)
	first := dials.n.Load() - before
	for i := range 3 {
		n := dials.n.Load()
		if _, _, err := d.Get(ctx, "k"); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("Get %d after the one that met the outage: %v; want ErrUnavailable", i+2, err)
		}
		if more := dials.n.Load() - n; more != 0 {
			t.Fatalf("Get %d after the one that met the outage dialed %d times; want none", i+2, more)
		}
	}
	t.Logf("the call that met the outage dialed %d times (its redials and the breaker's probe); the next calls none", first)
}

// holdSecondProbe makes the breaker's probe goroutine park at its second probe (the
// first one after the breaker opened) until release is called (once or more); held
// waits until it is parked. Call it before any probe runs.
func holdSecondProbe(t *testing.T, d *Driver) (held, release func()) {
	t.Helper()
	hold := make(chan struct{})
	var once sync.Once
	release = func() { once.Do(func() { close(hold) }) }
	t.Cleanup(release)
	probe := d.brk.probe
	var probes atomic.Int32
	d.brk.probe = func(ctx context.Context) error {
		if probes.Add(1) == 2 {
			<-hold
		}
		return probe(ctx)
	}
	held = func() {
		t.Helper()
		waitFor(t, "the breaker probes again", func() bool { return probes.Load() >= 2 })
	}
	return held, release
}

// TestBreakerFailsFastAndRecovers: with Redis stopped, once the breaker is open, Get and
// Set and the other guarded commands fail with an error matching ErrUnavailable without
// a dial; after a restart, commands go to Redis again at the breaker's next probe.
func TestBreakerFailsFastAndRecovers(t *testing.T) {
	d, srv, dials := countingDriver(t, Options{Breaker: BreakerOptions{Cooldown: 50 * time.Millisecond}})
	ctx := context.Background()
	held, release := holdSecondProbe(t, d)
	openBreaker(t, d, srv)
	held() // the probes while open dial too: the dials counted from here are the calls'
	n := dials.n.Load()
	const calls = 1000
	for _, op := range []struct {
		name string
		call func() error
	}{
		{"get", func() error { _, _, err := d.Get(ctx, "k"); return err }},
		{"set", func() error { return d.Set(ctx, driver.Entry{Key: "k", Value: []byte(`"v"`), TTL: time.Minute}) }},
	} {
		for range calls {
			if err := op.call(); !errors.Is(err, ErrUnavailable) || !strings.HasPrefix(err.Error(), "rediscache: "+op.name+" ") {
				t.Fatalf("%s with the breaker open: %v; want a driver error matching ErrUnavailable", op.name, err)
			}
		}
	}
	for name, call := range guardedCalls(ctx, d) {
		if err := call(); !errors.Is(err, ErrUnavailable) {
			t.Errorf("%s with the breaker open: %v; want ErrUnavailable", name, err)
		}
	}
	if more := dials.n.Load() - n; more != 0 {
		t.Errorf("%d dials by the calls with the breaker open; want none", more)
	}

	srv.Restart(t)
	release()
	// The breaker closes at its next probe.
	waitFor(t, "the breaker closes after the restart", func() bool { return !d.BreakerOpen() })
	if _, _, err := d.Get(ctx, "k"); err != nil {
		t.Fatalf("Get with the breaker closed again: %v", err)
	}
}

// guardedCalls are the driver's other commands that the breaker guards.
func guardedCalls(ctx context.Context, d *Driver) map[string]func() error {
	return map[string]func() error{
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
}

// TestBreakerThroughTheManager: with the breaker open, the manager's Lock returns an
// error (not contention) without a dial, before its Wait, and never runs fn; Remember
// returns an error.
func TestBreakerThroughTheManager(t *testing.T) {
	d, srv, dials := countingDriver(t, Options{})
	c, err := cache.New(cache.Config{Drivers: map[string]cache.Driver{"redis": d}, Prefix: "brk"})
	if err != nil {
		t.Fatal(err)
	}
	openBreaker(t, d, srv)
	ctx := context.Background()

	var ran atomic.Bool
	fn := func(context.Context) (int, error) { ran.Store(true); return 1, nil }
	n := dials.n.Load()
	for _, wait := range []time.Duration{0, time.Minute} {
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
		if wait > 0 && took >= wait {
			t.Errorf("Lock (Wait %v) waited it out with the breaker open; want an error at once", wait)
		}
	}
	if more := dials.n.Load() - n; more != 0 {
		t.Errorf("Lock with the breaker open dialed %d times; want none", more)
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

// TestBreakerErrorRepliesAreAnswers: a Redis that answers with errors is reachable.
// With maxclients reached (a new connection gets "max number of clients reached") or
// the password rotated (a new connection gets WRONGPASS or NOAUTH), the breaker stays
// closed, however many commands need a new connection and whatever its probe meets, and
// the Gets on pooled connections keep succeeding.
func TestBreakerErrorRepliesAreAnswers(t *testing.T) {
	t.Run("node", func(t *testing.T) {
		errorRepliesAreAnswers(t, func(t *testing.T) (*Driver, *redis.Client) {
			d, srv := breakerDriver(t, Options{})
			if srv.Kind() != redistest.KindRedisServer {
				t.Skip("needs redis-server: miniredis has neither maxclients nor requirepass")
			}
			admin := redis.NewClient(&redis.Options{Addr: srv.Addr()})
			t.Cleanup(func() { _ = admin.Close() })
			return d, admin
		})
	})
	// Through Sentinel the probe is a PING through the driver's own client (which asks
	// the Sentinels for the master): a new connection refused with an error reply is an
	// answer there too.
	t.Run("sentinel", func(t *testing.T) {
		errorRepliesAreAnswers(t, func(t *testing.T) (*Driver, *redis.Client) {
			g := redistest.StartSentinelGroup(t)
			rdb := redis.NewFailoverClient(&redis.FailoverOptions{MasterName: g.MasterName(), SentinelAddrs: g.Addrs()})
			d, err := New(Options{Client: rdb})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = d.Close(); _ = rdb.Close() })
			if err := d.Set(context.Background(), driver.Entry{Key: "warm", Value: []byte(`"v"`)}); err != nil {
				t.Fatal(err)
			}
			m := redis.NewClient(&redis.Options{Addr: g.Master()})
			t.Cleanup(func() { _ = m.Close() })
			return d, m
		})
	})
}

// errorRepliesAreAnswers is TestBreakerErrorRepliesAreAnswers on the driver and a
// client of its master's node that open gives.
func errorRepliesAreAnswers(t *testing.T, open func(t *testing.T) (*Driver, *redis.Client)) {
	for _, tc := range []struct {
		name  string
		limit func(ctx context.Context, c redis.Cmdable) error
	}{
		{"maxclients", func(ctx context.Context, c redis.Cmdable) error {
			n, err := connectedClients(ctx, c)
			if err != nil {
				return err
			}
			return c.ConfigSet(ctx, "maxclients", strconv.Itoa(n)).Err()
		}},
		{"requirepass", func(ctx context.Context, c redis.Cmdable) error {
			return c.ConfigSet(ctx, "requirepass", "rotated").Err()
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, c := open(t)
			ctx := context.Background()
			// The test's own connection, opened before the limit.
			cn := c.Conn()
			defer cn.Close()
			if err := cn.Ping(ctx).Err(); err != nil {
				t.Fatal(err)
			}
			// Pooled connections that stay open through the change: sequential Gets use
			// one, concurrent ones several.
			hammer(ctx, d, 8, 20)
			if err := tc.limit(ctx, cn); err != nil {
				t.Fatal(err)
			}
			// The probe meets the limit: it is an answer.
			d.brk.await(ctx, d.brk.check())
			if d.BreakerOpen() {
				t.Fatal("the breaker's probe met an error reply and opened the breaker")
			}
			// Concurrent Gets need new connections, which Redis refuses with an error reply.
			refused, unavailable := hammer(ctx, d, 32, 20)
			for i := range 400 {
				if _, _, err := d.Get(ctx, "warm"); err != nil {
					t.Fatalf("sequential Get %d over a pooled connection: %v", i, err)
				}
			}
			t.Logf("concurrent Gets: %d refused by Redis, %d ErrUnavailable; 400 sequential Gets succeeded", refused, unavailable)
			if unavailable != 0 || d.BreakerOpen() {
				t.Errorf("%d Gets failed with ErrUnavailable (breaker open: %v); want none", unavailable, d.BreakerOpen())
			}
			// Now without a pooled connection: the driver's connections are killed, so
			// its Gets dial, and Redis refuses each dial with an error reply.
			killed, err := killClients(ctx, cn)
			if err != nil {
				t.Fatal(err)
			}
			if tc.name == "maxclients" {
				n, err := connectedClients(ctx, cn)
				if err != nil {
					t.Fatal(err)
				}
				if err := cn.ConfigSet(ctx, "maxclients", strconv.Itoa(n)).Err(); err != nil {
					t.Fatal(err)
				}
			}
			// Few: over maxclients each Get waits out go-redis's redials.
			const gets = 5
			var replies, broken int
			for i := range gets {
				_, _, err := d.Get(ctx, "warm")
				var re redis.Error
				switch {
				case errors.Is(err, ErrUnavailable) || d.BreakerOpen():
					t.Fatalf("Get %d over a new connection: %v (breaker open: %v); Redis answered every dial", i, err, d.BreakerOpen())
				case errors.As(err, &re):
					replies++
				case err != nil:
					broken++
				}
			}
			// Over maxclients, Redis writes its error reply and closes the connection as it
			// accepts it: go-redis reads the reply, or fails to write its handshake first
			// (a broken pipe). Either way no Get could use a connection.
			t.Logf("%d of the driver's connections killed; then %d Gets: %d error replies, %d network errors", killed, gets, replies, broken)
			if replies+broken != gets {
				t.Errorf("%d of %d Gets succeeded without a pooled connection: the limit was not in force", gets-replies-broken, gets)
			}
			if tc.name == "requirepass" && replies != gets {
				t.Errorf("%d of %d Gets met WRONGPASS or NOAUTH; want every one", replies, gets)
			}
		})
	}
}

// killClients kills every normal client's connection but cn's own and the Sentinels',
// and returns how many.
func killClients(ctx context.Context, cn *redis.Conn) (int, error) {
	me, err := cn.ClientID(ctx).Result()
	if err != nil {
		return 0, err
	}
	list, err := cn.ClientList(ctx).Result()
	if err != nil {
		return 0, err
	}
	n := 0
	for _, f := range redistest.ParseClientList(list) {
		if f["id"] == strconv.FormatInt(me, 10) || strings.HasPrefix(f["name"], "sentinel-") || strings.ContainsAny(f["flags"], "SMP") {
			continue
		}
		if err := cn.Do(ctx, "client", "kill", "id", f["id"]).Err(); err != nil && !strings.Contains(err.Error(), "No such client") {
			return n, err
		}
		n++
	}
	return n, nil
}

// hammer runs Gets from workers goroutines, each calls times, and counts the failures
// and those of them that match ErrUnavailable.
func hammer(ctx context.Context, d *Driver, workers, calls int) (failed, unavailable int64) {
	var nf, nu atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range calls {
				_, _, err := d.Get(ctx, "warm")
				if err != nil {
					nf.Add(1)
				}
				if errors.Is(err, ErrUnavailable) {
					nu.Add(1)
				}
			}
		})
	}
	wg.Wait()
	return nf.Load(), nu.Load()
}

// connectedClients is INFO's connected_clients.
func connectedClients(ctx context.Context, c redis.Cmdable) (int, error) {
	info, err := c.Info(ctx, "clients").Result()
	if err != nil {
		return 0, err
	}
	for l := range strings.Lines(info) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "connected_clients:"); ok {
			return strconv.Atoi(v)
		}
	}
	return 0, fmt.Errorf("no connected_clients in INFO: %q", info)
}

// TestBreakerEvents: one outage is one "breaker.opened" event and, once Redis is back,
// one "breaker.closed", each with the driver's name, however many calls fail in
// between; the metrics have the breaker's state and count the reads that failed open.
func TestBreakerEvents(t *testing.T) {
	d, srv, _ := countingDriver(t, Options{Breaker: BreakerOptions{Cooldown: 50 * time.Millisecond}})
	var mu sync.Mutex
	var events []cache.Event
	c, err := cache.New(cache.Config{
		Drivers: map[string]cache.Driver{"redis": d}, Metrics: true, FailOpen: true,
		Hooks: []cache.Hook{{
			Kinds:   []cache.EventKind{cache.EventBreakerOpened, cache.EventBreakerClosed},
			Observe: func(e cache.Event) { mu.Lock(); events = append(events, e); mu.Unlock() },
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	kinds := func() []cache.EventKind {
		mu.Lock()
		defer mu.Unlock()
		var ks []cache.EventKind
		for _, e := range events {
			if e.Driver != "redis" || e.Op != "Breaker" {
				t.Errorf("breaker event %+v: want Driver %q, Op %q", e, "redis", "Breaker")
			}
			ks = append(ks, e.Kind)
		}
		return ks
	}

	srv.Stop()
	const reads = 20
	var s string
	for i := range reads {
		if found, err := c.Get(ctx, "k", &s); found || err != nil {
			t.Fatalf("Get %d with Redis stopped under FailOpen = %v, %v; want a miss", i, found, err)
		}
	}
	if ks := kinds(); len(ks) != 1 || ks[0] != cache.EventBreakerOpened {
		t.Fatalf("breaker events after %d failed reads: %v; want one breaker.opened", reads, ks)
	}
	m := c.Metrics().Drivers["redis"]
	if !m.BreakerOpen || m.BreakerOpened != 1 || m.FailedOpen != reads {
		t.Errorf("metrics with Redis stopped: BreakerOpen %v, BreakerOpened %d, FailedOpen %d; want true, 1, %d",
			m.BreakerOpen, m.BreakerOpened, m.FailedOpen, reads)
	}

	srv.Restart(t)
	// The breaker closes at its next probe.
	waitFor(t, "a second breaker event after the restart", func() bool { return len(kinds()) >= 2 })
	if ks := kinds(); len(ks) != 2 || ks[1] != cache.EventBreakerClosed {
		t.Fatalf("breaker events after the restart: %v; want breaker.opened, breaker.closed", ks)
	}
	if m := c.Metrics(); m.BreakerOpen || m.BreakerClosed != 1 {
		t.Errorf("metrics after the restart: BreakerOpen %v, BreakerClosed %d; want false, 1", m.BreakerOpen, m.BreakerClosed)
	}
}

// gateDialer is a Dialer that, once closed, holds every dial until it is opened again
// (or the dial's context ends), as an unreachable host that drops connection attempts
// would; open, it dials.
type gateDialer struct {
	mu     sync.Mutex
	gate   chan struct{} // nil: open
	waits  atomic.Int64  // dials held so far
	dialer net.Dialer
}

func (g *gateDialer) close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.gate == nil {
		g.gate = make(chan struct{})
	}
}

func (g *gateDialer) open() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.gate != nil {
		close(g.gate)
		g.gate = nil
	}
}

func (g *gateDialer) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	g.mu.Lock()
	gate := g.gate
	g.mu.Unlock()
	if gate != nil {
		g.waits.Add(1)
		select {
		case <-gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return g.dialer.DialContext(ctx, network, addr)
}

// TestBreakerEndsQueuedReads: reads queued behind a batch that cannot reach Redis stop
// waiting when the breaker opens, and fail with ErrUnavailable like the reads that come
// after; a queued write waits for its own outcome. Redis is stopped and its dials held,
// so that go-redis's batch stays in flight; a read cut by its short deadline makes the
// breaker check, and the probe, held too, opens it at its ProbeTimeout.
func TestBreakerEndsQueuedReads(t *testing.T) {
	srv := redistest.Start(t)
	g := new(gateDialer)
	// DialTimeout a minute: a held dial stays held until the gate opens.
	client := redis.NewClient(&redis.Options{Addr: srv.Addr(), Dialer: g.Dial, DialTimeout: time.Minute, ContextTimeoutEnabled: true})
	d, err := New(Options{Client: client, Breaker: BreakerOptions{Cooldown: time.Minute, ProbeTimeout: 100 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.open(); _ = d.Close(); _ = client.Close() })
	ctx := context.Background()
	if err := d.Set(ctx, driver.Entry{Key: "warm", Value: []byte(`"v"`)}); err != nil {
		t.Fatal(err)
	}
	if _, ok := d.exec.(guarded).p.(batched); !ok {
		t.Fatalf("the driver's commands are not batched (%T): nothing is queued", d.exec)
	}
	// Each call but one has a minute: without the breaker's end, a queued read would
	// wait for the held dials, and end at its deadline.
	call := func(f func(context.Context) error) <-chan error {
		done := make(chan error, 1)
		go func() {
			cctx, cancel := context.WithTimeout(ctx, time.Minute)
			defer cancel()
			done <- f(cctx)
		}()
		return done
	}
	get := func(key string) func(context.Context) error {
		return func(ctx context.Context) error { _, _, err := d.Get(ctx, key); return err }
	}

	srv.Stop()
	g.close()
	first := call(get("first")) // alone: sent directly, and held in its dial
	waitFor(t, "the first read dials", func() bool { return g.waits.Load() >= 1 })
	var reads []<-chan error
	for i := range 5 {
		reads = append(reads, call(get(fmt.Sprint("queued.", i))))
	}
	background := make(chan error, 1) // a read whose context never ends
	go func() { _, _, err := d.Get(ctx, "queued.background"); background <- err }()
	reads = append(reads, background)
	write := call(func(ctx context.Context) error {
		return d.Set(ctx, driver.Entry{Key: "w", Value: []byte(`"v"`), TTL: time.Minute})
	})
	p := d.exec.(guarded).p.(batched).p
	waitFor(t, "the reads and the write are queued", func() bool { return p.busy.Load() == 1+6+1 })

	cut, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	_, _, err = d.Get(cut, "cut") // queued too, and cut by its deadline: the breaker checks
	cancel()
	if err == nil || errors.Is(err, ErrUnavailable) {
		t.Fatalf("the read cut by its deadline: %v; want its deadline's error", err)
	}
	waitFor(t, "the breaker opens", d.BreakerOpen)
	for i, r := range reads {
		select {
		case err := <-r:
			if !errors.Is(err, ErrUnavailable) {
				t.Errorf("queued read %d: %v; want ErrUnavailable", i, err)
			}
		case <-time.After(time.Minute):
			t.Fatalf("queued read %d did not return within a minute of the breaker's opening", i)
		}
	}
	select {
	case err := <-write:
		t.Errorf("the queued write returned (%v) before its dial was let through; want it to wait for its outcome", err)
	default:
	}

	g.open() // the held dials go on, to a stopped Redis
	for name, r := range map[string]<-chan error{"the first read": first, "the queued write": write} {
		select {
		case err := <-r:
			if err == nil || errors.Is(err, ErrUnavailable) {
				t.Errorf("%s, once its dial was let through: %v; want the dial's error", name, err)
			}
		case <-time.After(time.Minute):
			t.Fatalf("%s did not return within a minute of its dial's release", name)
		}
	}
}

// TestRawPingReadsALateLook: a reply that arrived before the probe's deadline, but that
// the probe did not read before it (a starved process: the deadline's timer ran first),
// is an answer. Here the deadline has passed before the probe even starts, and the reply
// is already in the socket's buffer.
func TestRawPingReadsALateLook(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	written := make(chan struct{})
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_, _ = c.Write([]byte("+PONG\r\n"))
		close(written)
		_, _ = io.Copy(io.Discard, c)
	}()
	o := &redis.Options{Addr: ln.Addr().String(), Network: "tcp",
		Dialer: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := net.Dial(network, addr)
			if err == nil {
				<-written
				time.Sleep(10 * time.Millisecond) // the reply crosses the loopback
			}
			return c, err
		}}
	ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	if err := rawPing(ctx, o); err != nil {
		t.Fatalf("rawPing with the reply waiting in the socket: %v; want an answer", err)
	}
}

// waitFor polls ok every millisecond until it holds, and fails t after a minute: a hang
// detector, not a speed target.
func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("hang detector: a minute and still not: %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}
