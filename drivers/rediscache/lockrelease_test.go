package rediscache_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/cachekit/cache"
	"github.com/cachekit/cache/drivers/rediscache"
	"github.com/cachekit/cache/internal/testkit/faultproxy"
	"github.com/cachekit/cache/internal/testkit/redistest"
)

// proxied is a cache whose driver reaches a real redis-server through a fault proxy,
// and a cache that reaches it directly, with the same prefix, to look at the keys.
type proxied struct {
	p         *faultproxy.Proxy
	c, direct *cache.Cache
	mu        sync.Mutex
	errs      []cache.Event // the error events of c
}

// hangAfter is a hang detector, not a latency bound: only a hang reaches it, however
// busy the machine.
const hangAfter = time.Minute

func newProxied(t *testing.T) *proxied {
	t.Helper()
	u, err := url.Parse(redistest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	p, err := faultproxy.New(u.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() }) // after the caches' cleanups
	x := &proxied{p: p}
	prefix := scope("lockrel")
	x.direct, _ = newCache(t, u.String(), prefix)
	d := newDriver(t, rediscache.Options{URL: "redis://" + p.Addr() + u.Path})
	x.c, err = cache.New(cache.Config{Drivers: map[string]cache.Driver{"redis": d}, Prefix: prefix, Metrics: true,
		Hooks: []cache.Hook{{Kinds: []cache.EventKind{cache.EventError}, Observe: func(e cache.Event) {
			x.mu.Lock()
			x.errs = append(x.errs, e)
			x.mu.Unlock()
		}}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = x.c.Close() })
	return x
}

func (x *proxied) held(t *testing.T, key string) bool {
	t.Helper()
	found, err := x.direct.Has(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	return found
}

// TestReleaseCutByDeadlineFreesTheLock: with 3 ms of delay each way between the client
// and Redis, and fn returning about 1 ms before ctx's deadline, the release cannot be
// done by the deadline. It does not inherit it: in 20 runs of 20 the key is gone when
// Lock returns (the lock is not held for its 10 minutes), and Lock returns fn's result.
func TestReleaseCutByDeadlineFreesTheLock(t *testing.T) {
	const runs = 20
	x := newProxied(t)
	x.p.Delay(3 * time.Millisecond)
	var freed, cut, skipped int
	for i := 0; i < runs; i++ {
		key := fmt.Sprintf("lock.cut.%d.%d", i, skipped) // a retry takes a new key: the cut attempt may hold the old one until its cleanup
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		out, err := cache.Lock(ctx, x.c, key, 10*time.Minute, func(ctx context.Context) (int, error) {
			dl, _ := ctx.Deadline()
			time.Sleep(time.Until(dl) - time.Millisecond)
			return 1, nil
		})
		if ctx.Err() != nil {
			cut++ // the deadline passed before Lock returned: the release outlived it
		}
		cancel()
		if !out.Acquired && errors.Is(err, context.DeadlineExceeded) && skipped < runs {
			skipped++ // a busy machine spent the whole deadline before the acquire: again
			cut--
			i--
			continue
		}
		if !out.Acquired || out.Value != 1 || err != nil {
			t.Fatalf("run %d: Lock = %+v, %v; want acquired, 1, nil", i, out, err)
		}
		if !x.held(t, key) {
			freed++
		}
	}
	t.Logf("%d runs: the deadline passed during %d releases; %d freed the lock", runs, cut, freed)
	if freed != runs {
		t.Fatalf("%d of %d releases cut by the caller's deadline freed the lock; want all", freed, runs)
	}
	if x.p.Stats().Delays == 0 {
		t.Fatal("the proxy delayed nothing: the test tested nothing")
	}
}

// TestFailedReleaseAfterFnIsAnEvent: the link to Redis is cut after fn succeeded, so the
// release fails. Lock returns Acquired, fn's value and a nil error; the failed release is
// one error event (op Release, the lock's key and driver), counted in the metrics, and
// the lock stays until its TTL.
func TestFailedReleaseAfterFnIsAnEvent(t *testing.T) {
	x := newProxied(t)
	ctx := context.Background()
	out, err := cache.Lock(ctx, x.c, "lock.job", 10*time.Minute, func(context.Context) (string, error) {
		x.p.Drop(true) // new connections are refused,
		x.p.Reset()    // and the open ones torn down
		return "done", nil
	})
	x.p.Drop(false)
	if !out.Acquired || out.Value != "done" || err != nil {
		t.Fatalf("Lock whose release failed = %+v, %v; want acquired, fn's value and nil", out, err)
	}
	x.mu.Lock()
	errs := x.errs
	x.mu.Unlock()
	if len(errs) != 1 || errs[0].Op != "Release" || errs[0].Key != "lock.job" || errs[0].Driver != "redis" || errs[0].Err == nil {
		t.Fatalf("error events %+v; want one failed Release of lock.job on redis", errs)
	}
	t.Logf("the error event: %v", errs[0].Err)
	if n := x.c.Metrics().Errors; n != 1 {
		t.Fatalf("metrics count %d errors; want 1", n)
	}
	if !x.held(t, "lock.job") {
		t.Fatal("the lock is gone; want it held until its TTL after a failed release")
	}
}

// TestAcquireCutByCtxIsDeleted: the SET NX reaches Redis after ctx has ended (30 ms of
// delay each way, a 10 ms deadline), so the store takes the lock although the caller got
// an error. The acquisition's error matches ErrNotAcquired and ctx's error, and the lock
// is deleted again rather than held for its 10 minutes. The wait is a hang detector.
func TestAcquireCutByCtxIsDeleted(t *testing.T) {
	x := newProxied(t)
	if err := x.c.Set(context.Background(), "warm", 1, time.Minute); err != nil { // a pooled connection
		t.Fatal(err)
	}
	x.p.Delay(30 * time.Millisecond)
	for _, wait := range []time.Duration{0, time.Minute} {
		key := fmt.Sprintf("lock.cut-acquire.%v", wait)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
		out, err := cache.LockWith(ctx, x.c, key, cache.LockOptions{TTL: 10 * time.Minute, Wait: wait}, func(context.Context) (int, error) {
			t.Error("fn ran without the lock")
			return 0, nil
		})
		cancel()
		if out.Acquired || !errors.Is(err, cache.ErrNotAcquired) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Wait %v: Lock cut by ctx = %+v, %v; want ErrNotAcquired and the deadline", wait, out, err)
		}
		start := time.Now()
		for x.held(t, key) || time.Since(start) < 100*time.Millisecond { // past the delayed SET
			if time.Since(start) > hangAfter {
				t.Fatalf("Wait %v: the lock taken by the cut attempt is still held after %v (hang detector)", wait, hangAfter)
			}
			time.Sleep(time.Millisecond)
		}
	}
}
