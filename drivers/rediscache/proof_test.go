package rediscache_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/cachekit/cache"
	"github.com/cachekit/cache/drivers/rediscache"
	"github.com/cachekit/cache/internal/testkit/redistest"
	"github.com/cachekit/cache/internal/testkit/xproc"
)

// The proofs of the lock's properties across servers, each as a test that fails
// without the property. They go through the public API (cache.New, cache.Lock) and run
// on a single Redis and on a 3-master Cluster.

// TestCrossProcessMutualExclusion: 4 OS processes, each with its own client, make 100
// lock attempts each on one key; inside fn an overlap detector (INCR a marker, check it
// is 1, DECR) never sees two holders. The negative control runs the same processes with
// a get-then-set lock and must see overlaps: the detector works. See
// xproc.MutualExclusion.
func TestCrossProcessMutualExclusion(t *testing.T) {
	forTargets(t, func(t *testing.T, url string) { xproc.MutualExclusion(t, xtarget(url)) })
	t.Run("negative-control", func(t *testing.T) { xproc.MutualExclusionNegative(t, xtarget(redistest.URL(t))) })
}

// TestExpirySafety: holder A's TTL runs out while its fn still runs; B acquires; A's
// release then leaves B's lock in place (a plain DEL would delete it).
func TestExpirySafety(t *testing.T) {
	forTargets(t, func(t *testing.T, url string) {
		ctx := context.Background()
		p := scope("expiry")
		a, _ := newCache(t, url, p) // two servers: two clients, one prefix
		b, bd := newCache(t, url, p)
		const key = "lock.report"
		const ttl = 200 * time.Millisecond

		bHolds := make(chan struct{})
		aReleased := make(chan struct{})
		bDone := make(chan error, 1)
		outA, errA := cache.LockWith(ctx, a, key, cache.LockOptions{TTL: ttl, Owner: "A"}, func(context.Context) (int, error) {
			// A outlives its TTL: B takes the lock meanwhile.
			go func() {
				deadline := time.Now().Add(5 * time.Second)
				for {
					out, err := cache.LockWith(ctx, b, key, cache.LockOptions{TTL: time.Minute, Owner: "B"}, func(context.Context) (int, error) {
						close(bHolds)
						<-aReleased
						return 0, nil
					})
					if err != nil || out.Acquired {
						bDone <- err
						return
					}
					if time.Now().After(deadline) {
						bDone <- errors.New("B never acquired after A's TTL ran out")
						return
					}
					time.Sleep(5 * time.Millisecond)
				}
			}()
			select {
			case <-bHolds:
			case <-time.After(5 * time.Second):
				return 0, errors.New("B did not acquire")
			}
			return 1, nil // A returns: its release runs now, while B holds the key
		})
		// A ran, and learnt that its lock ran out under it.
		if !outA.Acquired || !errors.Is(errA, cache.ErrLockLost) {
			t.Fatalf("A's Lock = %+v, %v; want acquired, and ErrLockLost", outA, errA)
		}
		// B's lock is still there, still B's.
		raw, err := bd.Client().Get(ctx, p+"."+key).Result()
		if err != nil || !strings.HasPrefix(raw, `"B#`) {
			t.Fatalf("after A's release the key holds %q, %v; want B's lock", raw, err)
		}
		info, err := cache.InspectLock(ctx, a, key)
		if err != nil || !info.Held || info.Owner != "B" {
			t.Fatalf("InspectLock = %+v, %v; want held by B", info, err)
		}
		if out, err := cache.Lock(ctx, a, key, time.Minute, func(context.Context) (int, error) { return 0, nil }); out.Acquired || err != nil {
			t.Fatalf("a third holder took B's lock: %+v, %v", out, err)
		}
		close(aReleased)
		if err := <-bDone; err != nil {
			t.Fatal(err)
		}
		if n := bd.Client().Exists(ctx, p+"."+key).Val(); n != 0 {
			t.Fatal("B's release did not delete its lock")
		}
	})
}

// TestPrefixLocks: caches with prefixes "svcA" and "svcB" never block each other's lock
// on the same key; two caches with the same prefix do.
func TestPrefixLocks(t *testing.T) {
	forTargets(t, func(t *testing.T, url string) {
		ctx := context.Background()
		svcA, _ := newCache(t, url, "svcA")
		svcB, _ := newCache(t, url, "svcB")
		svcA2, _ := newCache(t, url, "svcA") // another server of service A
		key := scope("lock.nightly")
		out, err := cache.Lock(ctx, svcA, key, time.Minute, func(ctx context.Context) (string, error) {
			other, err := cache.Lock(ctx, svcB, key, time.Minute, func(context.Context) (int, error) { return 1, nil })
			if err != nil || !other.Acquired {
				return "", fmt.Errorf("svcB could not take its own lock while svcA held the same key: %+v, %v", other, err)
			}
			same, err := cache.Lock(ctx, svcA2, key, time.Minute, func(context.Context) (int, error) { return 1, nil })
			if err != nil || same.Acquired {
				return "", fmt.Errorf("another svcA server took svcA's held lock: %+v, %v", same, err)
			}
			return "ok", nil
		})
		if err != nil || !out.Acquired {
			t.Fatalf("svcA Lock = %+v, %v", out, err)
		}
	})
}

// TestOutage: the Redis stops mid-test. Lock, Get and Set return errors within the
// context deadline, never a panic, and a held lock is never reported as "someone else
// holds it". After a restart on the same port, the same cache works again; after Close,
// no goroutine is left behind.
func TestOutage(t *testing.T) {
	srv := redistest.Start(t) // a server of its own: it gets stopped
	ignore := goleak.IgnoreCurrent()
	ctx := context.Background()
	d, err := rediscache.New(rediscache.Options{URL: srv.URL()})
	if err != nil {
		t.Fatal(err)
	}
	var releaseErrs atomic.Int64
	dials := &dialCounter{} // the dials of the driver's lock client
	rediscache.LockClientOf(d).AddHook(dials)
	c, err := cache.New(cache.Config{Drivers: map[string]cache.Driver{"redis": d}, Prefix: "outage",
		Hooks: []cache.Hook{{Kinds: []cache.EventKind{cache.EventError}, Observe: func(e cache.Event) {
			if e.Op == "Release" && e.Key == "lock.job" {
				releaseErrs.Add(1)
			}
		}}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Set(ctx, "k", "v", time.Minute); err != nil {
		t.Fatal(err)
	}
	// A waiter keeps a subscription open: the outage must not leak it either.
	_, _ = cache.LockWith(ctx, c, "warm", cache.LockOptions{TTL: time.Minute, Wait: 10 * time.Millisecond}, func(context.Context) (int, error) { return 0, nil })

	// The store dies while a lock is held, after fn's work is done: the release fails.
	// That is not the job's failure: Lock returns fn's value and nil, and the failed
	// release is an error event. The release runs on the driver's fail-fast lock client:
	// it dials at most twice (one dial, one retry) rather than redial for 1.7 s
	// (go-redis's defaults: 5 dials 100 ms apart, 3 retries: up to 20 dials). Counted,
	// not timed.
	var stopped time.Time
	var dialsAtStop int64
	out, err := cache.Lock(ctx, c, "lock.job", time.Minute, func(context.Context) (int, error) {
		srv.Stop()
		stopped, dialsAtStop = time.Now(), dials.n.Load()
		return 1, nil
	})
	if !out.Acquired || out.Value != 1 || err != nil {
		t.Fatalf("Lock whose release hit a dead Redis = %+v, %v; want acquired, fn's value and nil", out, err)
	}
	if n := releaseErrs.Load(); n != 1 {
		t.Fatalf("%d error events for the failed release; want 1", n)
	}
	releaseDials := dials.n.Load() - dialsAtStop
	t.Logf("release on a dead Redis: Lock returned %v after the stop, after %d dials", time.Since(stopped).Round(100*time.Microsecond), releaseDials)
	if releaseDials > 2 {
		t.Errorf("the release on a dead Redis dialed %d times; want at most 2: it must fail fast", releaseDials)
	}

	const deadline = 300 * time.Millisecond
	ops := map[string]func(ctx context.Context) error{
		"Get": func(ctx context.Context) error {
			var s string
			_, err := c.Get(ctx, "k", &s)
			return err
		},
		"Set": func(ctx context.Context) error { return c.Set(ctx, "k", "v2", time.Minute) },
		"Lock": func(ctx context.Context) error {
			out, err := cache.Lock(ctx, c, "lock.job", time.Minute, func(context.Context) (int, error) {
				t.Error("fn ran while Redis was down")
				return 0, nil
			})
			if out.Acquired {
				t.Error("Lock reported Acquired while Redis was down")
			}
			return err
		},
		"Lock with Wait": func(ctx context.Context) error {
			_, err := cache.LockWith(ctx, c, "lock.job", cache.LockOptions{TTL: time.Minute, Wait: 5 * time.Second}, func(context.Context) (int, error) {
				t.Error("fn ran while Redis was down")
				return 0, nil
			})
			return err
		},
		"Increment": func(ctx context.Context) error { _, err := c.Increment(ctx, "n", 1); return err },
		"Remember": func(ctx context.Context) error {
			_, err := cache.Remember(ctx, c, "r", time.Minute, func(context.Context) (int, error) { return 1, nil })
			return err
		},
	}
	for name, op := range ops {
		octx, cancel := context.WithTimeout(ctx, deadline)
		start := time.Now()
		err := op(octx)
		took := time.Since(start)
		cancel()
		t.Logf("%s while Redis is down: %v after %v", name, err, took.Round(time.Millisecond))
		if err == nil {
			t.Errorf("%s while Redis is down: no error", name)
		}
		if took > time.Minute { // a hang detector: the deadline is 300 ms
			t.Errorf("%s took %v; want an error at its %v deadline", name, took, deadline)
		}
	}

	srv.Restart(t) // same port, empty
	start := time.Now()
	for {
		err := c.Set(ctx, "k", "back", time.Minute)
		if err == nil {
			break
		}
		if time.Since(start) > time.Minute { // a hang detector: it takes milliseconds
			t.Fatalf("the cache did not recover within a minute of the restart: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("recovered %v after the restart", time.Since(start).Round(time.Millisecond))
	var s string
	if found, err := c.Get(ctx, "k", &s); !found || err != nil || s != "back" {
		t.Fatalf("Get after the restart = %q, %v, %v", s, found, err)
	}
	if out, err := cache.Lock(ctx, c, "lock.job", time.Minute, func(context.Context) (int, error) { return 2, nil }); !out.Acquired || err != nil {
		t.Fatalf("Lock after the restart = %+v, %v", out, err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	goleak.VerifyNone(t, append(redistest.IgnoreGoroutines(), ignore)...)
}

// dialCounter is a go-redis hook that counts a client's dials.
type dialCounter struct{ n atomic.Int64 }

func (h *dialCounter) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		h.n.Add(1)
		return next(ctx, network, addr)
	}
}

func (*dialCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }

func (*dialCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// TestSeedCron: the lock guide's cron recipe. Five servers (each its own client and cache)
// fire the same cron at once; exactly one runs the job, the others skip without error.
func TestSeedCron(t *testing.T) {
	forTargets(t, func(t *testing.T, url string) {
		ctx := context.Background()
		p := scope("cron")
		const servers = 5
		caches := make([]*cache.Cache, servers)
		for i := range caches {
			caches[i], _ = newCache(t, url, p)
		}
		for day := range 3 { // three nights in a row: one run each
			var ran, skipped atomic.Int64
			var wg sync.WaitGroup
			fire := make(chan struct{})
			for i, c := range caches {
				wg.Go(func() {
					<-fire // 3am on every server
					out, err := cache.Lock(ctx, c, "lock.cleanup", 30*time.Minute, func(context.Context) (string, error) {
						ran.Add(1)
						time.Sleep(100 * time.Millisecond) // db.cleanup()
						return fmt.Sprintf("server %d", i), nil
					})
					switch {
					case err != nil:
						t.Errorf("server %d: %v", i, err)
					case !out.Acquired:
						skipped.Add(1)
					}
				})
			}
			close(fire)
			wg.Wait()
			if ran.Load() != 1 || skipped.Load() != servers-1 {
				t.Fatalf("night %d: the job ran on %d servers, %d skipped; want 1 and %d", day, ran.Load(), skipped.Load(), servers-1)
			}
		}
	})
}

// TestSeedWebhook: the lock guide's webhook recipe. 50 concurrent deliveries of one event id,
// spread over five servers, process it exactly once; the others answer
// "already-processed". With cache.Once, a retry that arrives after the work finished is
// not processed again either (a lock alone would let it run).
func TestSeedWebhook(t *testing.T) {
	forTargets(t, func(t *testing.T, url string) {
		ctx := context.Background()
		p := scope("webhook")
		const servers, deliveries = 5, 50
		caches := make([]*cache.Cache, servers)
		for i := range caches {
			caches[i], _ = newCache(t, url, p)
		}
		eventID := "evt_" + scope("1")

		var processed, already atomic.Int64
		var wg sync.WaitGroup
		retry := make(chan struct{})
		for i := range deliveries {
			c := caches[i%servers]
			wg.Go(func() {
				<-retry // a retry storm: every delivery at once
				out, err := cache.Lock(ctx, c, "webhook.stripe."+eventID, 24*time.Hour, func(context.Context) (string, error) {
					processed.Add(1)
					// processStripeEvent, lasting until every other delivery of the storm
					// has tried: a lock dedups overlapping deliveries only (a delivery
					// that a loaded machine schedules after the release would run again;
					// Once, below, covers those).
					for deadline := time.Now().Add(10 * time.Second); already.Load() < deliveries-1 && time.Now().Before(deadline); {
						time.Sleep(5 * time.Millisecond)
					}
					return "processed", nil
				})
				switch {
				case err != nil:
					t.Errorf("delivery %d: %v", i, err)
				case !out.Acquired:
					already.Add(1) // 200 {"status": "already-processed"}
				}
			})
		}
		close(retry)
		wg.Wait()
		if processed.Load() != 1 || already.Load() != deliveries-1 {
			t.Fatalf("Lock: %d deliveries processed the event, %d answered already-processed; want 1 and %d", processed.Load(), already.Load(), deliveries-1)
		}

		// The same with Once, plus late retries after the processing finished.
		var onceRuns atomic.Int64
		deliver := func(c *cache.Cache) (cache.OnceOutcome[string], error) {
			return cache.Once(ctx, c, "webhook.once."+eventID, 24*time.Hour, func(context.Context) (string, error) {
				onceRuns.Add(1)
				time.Sleep(50 * time.Millisecond)
				return "processed", nil
			})
		}
		storm := make(chan struct{})
		for i := range deliveries {
			c := caches[i%servers]
			wg.Go(func() {
				<-storm
				if out, err := deliver(c); err != nil || out.Value != "processed" {
					t.Errorf("Once delivery %d = %+v, %v", i, out, err)
				}
			})
		}
		close(storm)
		wg.Wait()
		for _, c := range caches { // Stripe retries an hour later
			if out, err := deliver(c); err != nil || out.Ran {
				t.Errorf("a late retry = %+v, %v; want the stored result, not a second run", out, err)
			}
		}
		if n := onceRuns.Load(); n != 1 {
			t.Fatalf("Once: the event was processed %d times for %d concurrent and %d late deliveries; want 1", n, deliveries, servers)
		}
	})
}
