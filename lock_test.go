package cache_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cachekit/cache"
	"github.com/cachekit/cache/driver"
	"github.com/cachekit/cache/drivers/memorycache"
	"github.com/cachekit/cache/internal/wait"
)

// Each test here checks one promise of cache.Lock (see docs/locks.md), on the
// in-process drivers.

func TestLock_ReturnShape(t *testing.T) {
	c, ctx := newCache(t, cache.Config{}), ctxT(t)
	out, err := cache.Lock(ctx, c, "lock.nightly-import", 10*time.Minute, func(context.Context) (string, error) {
		return "done", nil
	})
	if err != nil || !out.Acquired || out.Value != "done" {
		t.Fatalf("Lock = %+v, %v; want {Acquired:true Value:done}, nil", out, err)
	}
}

func TestLock_HeldIsNotAcquiredNotError(t *testing.T) {
	c, ctx := newCache(t, cache.Config{}), ctxT(t)
	_, _ = cache.Lock(ctx, c, "lock.x", time.Minute, func(ctx context.Context) (int, error) {
		out, err := cache.Lock(ctx, c, "lock.x", time.Minute, func(context.Context) (int, error) {
			t.Error("fn ran while the lock was held")
			return 1, nil
		})
		if err != nil || out.Acquired || out.Value != 0 {
			t.Errorf("Lock on a held key = %+v, %v; want {Acquired:false Value:0}, nil", out, err)
		}
		return 0, nil
	})
}

func TestLock_TTLRequired(t *testing.T) {
	c, ctx := newCache(t, cache.Config{}), ctxT(t)
	for _, ttl := range []time.Duration{0, -time.Second} {
		ran := false
		_, err := cache.Lock(ctx, c, "lock.x", ttl, func(context.Context) (int, error) { ran = true; return 0, nil })
		if !errors.Is(err, cache.ErrInvalidTTL) || ran {
			t.Errorf("Lock with TTL %v = %v, ran %v; want ErrInvalidTTL and fn not run", ttl, err, ran)
		}
		_, err = cache.LockWith(ctx, c, "lock.x", cache.LockOptions{Owner: "w"}, func(context.Context) (int, error) { ran = true; return 0, nil })
		if !errors.Is(err, cache.ErrInvalidTTL) || ran {
			t.Errorf("LockWith without TTL = %v, ran %v; want ErrInvalidTTL and fn not run", err, ran)
		}
	}
}

func TestLock_DefaultOwnerIsPid(t *testing.T) {
	c, ctx := newCache(t, cache.Config{}), ctxT(t)
	_, _ = cache.Lock(ctx, c, "lock.x", time.Minute, func(ctx context.Context) (int, error) {
		var s string
		if found, err := c.Get(ctx, "lock.x", &s); !found || err != nil || !strings.HasPrefix(s, "pid.") {
			t.Errorf("Get(lock key) = %q, %v, %v; want a string starting with pid.<pid>", s, found, err)
		}
		return 0, nil
	})
}

func TestLock_OwnerLabelReadableWithGet(t *testing.T) {
	c, ctx := newCache(t, cache.Config{Prefix: "billing"}), ctxT(t)
	_, _ = cache.LockWith(ctx, c, "lock.payments.batch", cache.LockOptions{TTL: 5 * time.Minute, Owner: "worker.payments-2"},
		func(ctx context.Context) (int, error) {
			var s string
			if _, err := c.Get(ctx, "lock.payments.batch", &s); err != nil || !strings.HasPrefix(s, "worker.payments-2") {
				t.Errorf("Get(lock key) = %q, %v; want it to start with the owner", s, err)
			}
			return 0, nil
		})
}

func TestLock_ReleasedOnReturnErrorAndPanic(t *testing.T) {
	c, ctx := newCache(t, cache.Config{}), ctxT(t)
	errFn := errors.New("fn failed")
	_, err := cache.Lock(ctx, c, "lock.err", time.Minute, func(context.Context) (int, error) { return 0, errFn })
	if !errors.Is(err, errFn) {
		t.Fatalf("Lock = %v; want fn's error unchanged", err)
	}
	func() {
		defer func() {
			if r := recover(); r != "boom" {
				t.Fatalf("recovered %v; want the panic to go on after the release", r)
			}
		}()
		_, _ = cache.Lock(ctx, c, "lock.panic", time.Minute, func(context.Context) (int, error) { panic("boom") })
	}()
	for _, key := range []string{"lock.ok", "lock.err", "lock.panic"} {
		if found, _ := c.Has(ctx, key); found {
			t.Errorf("%s still held after fn ended", key)
		}
	}
}

// In a synctest bubble the TTL runs out at an exact moment of the bubble's clock, which
// the memory drivers read too: the key has expired when fn tries to take it over, however
// busy the machine is.
func TestLock_ReleaseRemovesOnlyOwnToken(t *testing.T) {
	for _, name := range []string{"memory", "memoryExtended", "lru"} {
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c, ctx := newCache(t, cache.Config{Default: name}), ctxT(t)
				_, err := cache.Lock(ctx, c, "lock.x", 30*time.Millisecond, func(ctx context.Context) (int, error) {
					time.Sleep(60 * time.Millisecond) // the TTL runs out mid-work
					// Someone else takes the key; our release must leave it.
					res, err := c.SetWith(ctx, "lock.x", "other#token", cache.SetOptions{TTL: time.Minute, OnConflict: cache.Create})
					if err != nil || !res.Written {
						t.Fatalf("the expired lock could not be taken: %+v, %v", res, err)
					}
					return 0, nil
				})
				if !errors.Is(err, cache.ErrLockLost) {
					t.Fatalf("Lock = %v; want ErrLockLost: the TTL ran out while fn ran", err)
				}
				var s string
				if found, _ := c.Get(ctx, "lock.x", &s); !found || s != "other#token" {
					t.Fatalf("after the first holder's release the key holds %q, %v; want the new holder's lock", s, found)
				}
			})
		})
	}
}

func TestLock_NotReentrant(t *testing.T) {
	c, ctx := newCache(t, cache.Config{}), ctxT(t)
	out, err := cache.Lock(ctx, c, "lock.x", time.Minute, func(ctx context.Context) (bool, error) {
		inner, err := cache.Lock(ctx, c, "lock.x", time.Minute, func(context.Context) (bool, error) { return true, nil })
		return inner.Acquired, err
	})
	if err != nil || !out.Acquired || out.Value {
		t.Fatalf("nested Lock acquired = %v (err %v); want false: v1 is not re-entrant", out.Value, err)
	}
}

func TestLock_DriverOverrideLeavesCurrent(t *testing.T) {
	c, ctx := newCache(t, cache.Config{}), ctxT(t)
	out, err := cache.LockWith(ctx, c, "lock.audit", cache.LockOptions{TTL: time.Minute, Driver: "lru"},
		func(ctx context.Context) (string, error) {
			lru, _ := c.Driver("lru")
			onLRU, _ := lru.Has(ctx, "lock.audit")
			onMem, _ := c.Has(ctx, "lock.audit")
			if !onLRU || onMem {
				t.Errorf("lock on lru: %v, on memory: %v; want only on lru", onLRU, onMem)
			}
			return c.Current(), nil
		})
	if err != nil || out.Value != "memory" || c.Current() != "memory" {
		t.Fatalf("Current() during/after = %q/%q, %v; want memory", out.Value, c.Current(), err)
	}
	_, err = cache.LockWith(ctx, c, "lock.audit", cache.LockOptions{TTL: time.Minute, Driver: "nope"},
		func(context.Context) (int, error) { return 0, nil })
	if !errors.Is(err, cache.ErrUnknownDriver) {
		t.Fatalf("LockWith Driver nope = %v; want ErrUnknownDriver", err)
	}
}

func TestLock_NullDriverAlwaysAcquires(t *testing.T) {
	c, ctx := newCache(t, cache.Config{Default: "null"}), ctxT(t)
	var runs int
	for range 3 {
		out, err := cache.Lock(ctx, c, "lock.x", time.Minute, func(ctx context.Context) (int, error) {
			runs++
			inner, err := cache.Lock(ctx, c, "lock.x", time.Minute, func(context.Context) (int, error) { return 1, nil })
			return inner.Value, err
		})
		if err != nil || !out.Acquired || out.Value != 1 {
			t.Fatalf("Lock on null = %+v, %v; want always acquired, nested too", out, err)
		}
	}
	if runs != 3 {
		t.Fatalf("fn ran %d times; want 3", runs)
	}
}

func TestLock_ReleasedWhenCallerCancelled(t *testing.T) {
	c := newCache(t, cache.Config{})
	ctx, cancel := context.WithCancel(context.Background())
	_, err := cache.Lock(ctx, c, "lock.x", time.Hour, func(ctx context.Context) (int, error) {
		cancel() // the request goes away while fn runs
		<-ctx.Done()
		return 0, ctx.Err()
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Lock = %v; want fn's context.Canceled", err)
	}
	if found, _ := c.Has(context.Background(), "lock.x"); found {
		t.Fatal("a cancelled caller left its lock held for the whole TTL")
	}
}

func TestLock_DriverFailureIsAnErrorNotSkipped(t *testing.T) {
	f := newFlaky(t)
	c := newCache(t, cache.Config{Drivers: map[string]cache.Driver{"flaky": f}, Default: "flaky"})
	ctx := ctxT(t)
	f.down.Store(true)
	out, err := cache.Lock(ctx, c, "lock.x", time.Minute, func(context.Context) (int, error) { return 1, nil })
	if !errors.Is(err, errDown) || out.Acquired {
		t.Fatalf("Lock on a failing store = %+v, %v; want an error, never a silent Acquired == false", out, err)
	}
}

// TestLock_FailedReleaseIsNotTheJobsFailure: fn succeeded, then the release failed (the
// store went away). Lock returns Acquired, fn's value and a nil error; the failed release
// is one error event with the lock's key, driver and op, and is counted in the metrics;
// the lock stays until its TTL. A handle's Release still returns its error.
func TestLock_FailedReleaseIsNotTheJobsFailure(t *testing.T) {
	f := newFlaky(t)
	var mu sync.Mutex
	var events []cache.Event
	c := newCache(t, cache.Config{Drivers: map[string]cache.Driver{"flaky": f}, Default: "flaky", Metrics: true,
		Hooks: []cache.Hook{{Kinds: []cache.EventKind{cache.EventError}, Observe: func(e cache.Event) {
			mu.Lock()
			events = append(events, e)
			mu.Unlock()
		}}}})
	ctx := ctxT(t)
	out, err := cache.Lock(ctx, c, "lock.y", time.Minute, func(context.Context) (int, error) {
		f.down.Store(true)
		return 7, nil
	})
	f.down.Store(false)
	if err != nil || !out.Acquired || out.Value != 7 {
		t.Fatalf("Lock with a failing release = %+v, %v; want Acquired, fn's value 7 and a nil error", out, err)
	}
	mu.Lock()
	got := slices.Clone(events)
	mu.Unlock()
	if len(got) != 1 || got[0].Op != "Release" || got[0].Key != "lock.y" || got[0].Driver != "flaky" || !errors.Is(got[0].Err, errDown) {
		t.Fatalf("error events %+v; want one Release error of lock.y on flaky matching the store's error", got)
	}
	if m := c.Metrics(); m.Errors != 1 || m.Drivers["flaky"].Errors != 1 {
		t.Fatalf("metrics count %d errors (%d on flaky); want 1", m.Errors, m.Drivers["flaky"].Errors)
	}
	if info, err := cache.InspectLock(ctx, c, "lock.y"); err != nil || !info.Held {
		t.Fatalf("InspectLock = %+v, %v; want the lock held until its TTL", info, err)
	}
	// fn's own error is returned as it is, whatever the release did.
	errBoom := errors.New("fn failed")
	_, err = cache.Lock(ctx, c, "lock.z", time.Minute, func(context.Context) (int, error) {
		f.down.Store(true)
		return 0, errBoom
	})
	f.down.Store(false)
	if !errors.Is(err, errBoom) || errors.Is(err, errDown) {
		t.Fatalf("Lock whose fn failed and whose release failed = %v; want fn's error only", err)
	}
	h, err := cache.Acquire(ctx, c, "lock.h", cache.LockOptions{TTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	f.down.Store(true)
	err = h.Release(ctx)
	f.down.Store(false)
	if !errors.Is(err, errDown) {
		t.Fatalf("handle Release on a failing store = %v; want its error", err)
	}
}

func TestLock_UnsupportedDriverFailsLoudly(t *testing.T) {
	c := newCache(t, cache.Config{Drivers: map[string]cache.Driver{"bare": bare{newFlaky(t)}}})
	_, err := cache.Lock(ctxT(t), c, "lock.x", time.Minute, func(context.Context) (int, error) { return 0, nil })
	if !errors.Is(err, cache.ErrUnsupported) {
		t.Fatalf("Lock on a driver without conditional writes = %v; want ErrUnsupported", err)
	}
}

// TestLock_200Goroutines: never two inside fn at once, and every attempt either runs or
// gets Acquired == false.
func TestLock_200Goroutines(t *testing.T) {
	for _, name := range []string{"memory", "memoryExtended", "lru"} {
		t.Run(name, func(t *testing.T) {
			c, ctx := newCache(t, cache.Config{Default: name}), ctxT(t)
			const goroutines, attempts = 200, 20
			var inside, overlaps, ran, skipped atomic.Int64
			var wg sync.WaitGroup
			start := make(chan struct{})
			for range goroutines {
				wg.Go(func() {
					<-start
					for range attempts {
						out, err := cache.Lock(ctx, c, "lock.hot", time.Minute, func(context.Context) (int, error) {
							if inside.Add(1) != 1 {
								overlaps.Add(1)
							}
							time.Sleep(20 * time.Microsecond)
							inside.Add(-1)
							return 1, nil
						})
						switch {
						case err != nil:
							t.Errorf("Lock: %v", err)
						case out.Acquired:
							ran.Add(1)
						default:
							skipped.Add(1)
						}
					}
				})
			}
			close(start)
			wg.Wait()
			t.Logf("%d attempts: %d ran, %d skipped, %d overlaps", goroutines*attempts, ran.Load(), skipped.Load(), overlaps.Load())
			if overlaps.Load() != 0 {
				t.Fatalf("%d times two holders were inside fn at once", overlaps.Load())
			}
			if ran.Load()+skipped.Load() != goroutines*attempts || ran.Load() == 0 {
				t.Fatalf("ran %d + skipped %d != %d attempts", ran.Load(), skipped.Load(), goroutines*attempts)
			}
		})
	}
}

// racy implements Create as a read followed by a write: the non-atomic emulation the
// library never does. The test below shows that the overlap detector of
// TestLock_200Goroutines catches it, so that test would fail without an atomic Create.
type racy struct{ *flaky }

func (r racy) SetIf(ctx context.Context, e driver.Entry, c driver.Condition) (bool, error) {
	_, found, err := r.Get(ctx, e.Key)
	if err != nil || found == (c == driver.IfAbsent) {
		return false, err
	}
	time.Sleep(100 * time.Microsecond) // the window every non-atomic emulation has
	return true, r.Set(ctx, e)
}

func TestLock_OverlapDetectorCatchesANonAtomicCreate(t *testing.T) {
	c := newCache(t, cache.Config{Drivers: map[string]cache.Driver{"racy": racy{newFlaky(t)}}})
	ctx := ctxT(t)
	var inside, overlaps atomic.Int64
	var wg sync.WaitGroup
	for range 200 {
		wg.Go(func() {
			for range 5 {
				_, _ = cache.Lock(ctx, c, "lock.hot", time.Minute, func(context.Context) (int, error) {
					if inside.Add(1) != 1 {
						overlaps.Add(1)
					}
					time.Sleep(50 * time.Microsecond)
					inside.Add(-1)
					return 0, nil
				})
			}
		})
	}
	wg.Wait()
	t.Logf("a get-then-set Create let %d holders overlap", overlaps.Load())
	if overlaps.Load() == 0 {
		t.Fatal("the overlap detector saw nothing on a racy driver: it proves nothing on the real ones")
	}
}

func TestLock_CancelledContextTakesNoLock(t *testing.T) {
	c := newCache(t, cache.Config{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	out, err := cache.Lock(ctx, c, "lock.x", time.Minute, func(context.Context) (int, error) {
		t.Error("fn ran for a caller whose context was already cancelled")
		return 0, nil
	})
	if !errors.Is(err, context.Canceled) || out.Acquired {
		t.Fatalf("Lock with a cancelled ctx = %+v, %v; want context.Canceled", out, err)
	}
}

// A lock deleted under a holder without AutoExtend (force-released, evicted) is reported.
func TestLock_ForceReleasedIsReportedAsLost(t *testing.T) {
	c, ctx := newCache(t, cache.Config{}), ctxT(t)
	out, err := cache.Lock(ctx, c, "lock.x", time.Minute, func(ctx context.Context) (int, error) {
		return 1, cache.ForceRelease(ctx, c, "lock.x")
	})
	if !out.Acquired || out.Value != 1 || !errors.Is(err, cache.ErrLockLost) {
		t.Fatalf("Lock = %+v, %v; want fn's value and ErrLockLost", out, err)
	}
}

// brokenWatch is a memory driver whose Watch always fails, like a Redis whose subscriber
// connection cannot be set up in time.
type brokenWatch struct{ *memorycache.Driver }

func (brokenWatch) Watch(context.Context, string) (<-chan struct{}, error) {
	return nil, errors.New("subscribe: i/o timeout")
}

// silentWatch is a memory driver whose Watch succeeds but never fires: a driver that
// forgot to notify its watchers on a release.
type silentWatch struct{ *memorycache.Driver }

func (silentWatch) Watch(ctx context.Context, _ string) (<-chan struct{}, error) {
	ch := make(chan struct{})
	context.AfterFunc(ctx, func() { close(ch) })
	return ch, nil
}

// handoff runs one handoff on c in a synctest bubble: a holder takes "job", a waiter
// (LockOptions.Wait, the given probe in its ctx) asks for it, and the holder releases it
// as soon as the waiter's first attempt has failed, so that the waiter is waiting when
// the release comes. It returns the waiter's outcome and how long after the release it
// held the lock: exact, since the bubble's clock moves only when every goroutine waits.
func handoff(t *testing.T, c *cache.Cache, p *wait.Probe) (acquired bool, after time.Duration, err error) {
	t.Helper()
	ctx := context.Background()
	h, err := cache.Acquire(ctx, c, "job", cache.LockOptions{TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	waiting := make(chan struct{})
	var once sync.Once
	p.Tried = func(_ wait.Why, done bool, _ error) {
		if !done {
			once.Do(func() { close(waiting) })
		}
	}
	type result struct {
		acquired bool
		at       time.Time
		err      error
	}
	res := make(chan result, 1)
	go func() {
		out, err := cache.LockWith(wait.WithProbe(ctx, p), c, "job", cache.LockOptions{TTL: time.Hour, Wait: time.Minute},
			func(context.Context) (time.Time, error) { return time.Now(), nil })
		res <- result{out.Acquired, out.Value, err}
	}()
	<-waiting
	released := time.Now()
	if err := h.Release(ctx); err != nil {
		t.Fatal(err)
	}
	r := <-res
	return r.acquired, r.at.Sub(released), r.err
}

// A waiter is woken by the holder's release, not by its poll: on the in-process drivers
// (their Watch) it holds the lock at the very moment of the release. With its poll
// stretched to an hour, only the watch can wake it; and a watch that never fires leaves
// it waiting until its Wait ends.
func TestLockWait_WokenByRelease(t *testing.T) {
	for _, name := range []string{"memory", "lru"} {
		for _, poll := range []time.Duration{0, time.Hour} {
			t.Run(fmt.Sprintf("%s/poll=%v", name, poll), func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					c := newCache(t, cache.Config{Default: name})
					p := &wait.Probe{Poll: poll}
					acquired, after, err := handoff(t, c, p)
					why, _ := p.Done()
					if err != nil || !acquired || why != wait.Watched || after != 0 {
						t.Fatalf("waiter: acquired %v, err %v, woken by %v %v after the release; want acquired by the watch at once (attempts: %d first, %d watched, %d polled)",
							acquired, err, why, after, p.Attempts(wait.First), p.Attempts(wait.Watched), p.Attempts(wait.Polled))
					}
				})
			})
		}
	}
	// The test's power: with a watch that never fires, the waiter is woken by its poll,
	// later; with the poll stretched, only when its Wait ends.
	t.Run("silent watch", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			d, err := memorycache.New(memorycache.Options{})
			if err != nil {
				t.Fatal(err)
			}
			c := newCache(t, cache.Config{Drivers: map[string]driver.Driver{"m": silentWatch{d}}})
			p := &wait.Probe{}
			acquired, after, err := handoff(t, c, p)
			if why, _ := p.Done(); err != nil || !acquired || why != wait.Polled || after == 0 {
				t.Fatalf("waiter on a silent watch: acquired %v, err %v, woken by %v %v after the release; want acquired by the poll, later", acquired, err, why, after)
			}
			// The loop's last attempt, at the end of the Wait, finds the lock free.
			p = &wait.Probe{Poll: time.Hour}
			acquired, after, err = handoff(t, c, p)
			if why, _ := p.Done(); err != nil || !acquired || why != wait.Polled || after != time.Minute {
				t.Fatalf("waiter on a silent watch, poll stretched: acquired %v, err %v, woken by %v %v after the release; want acquired by the last poll, at the end of the 1m Wait", acquired, err, why, after)
			}
		})
	})
}

// TestLockWaitSurvivesBrokenWatch: a waiter whose driver cannot watch the key polls
// instead of failing, and takes the lock within one backoff of the release: at most
// 25 ms of the bubble's clock, which is exact (synctest: no scheduler can stretch it).
func TestLockWaitSurvivesBrokenWatch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d, err := memorycache.New(memorycache.Options{})
		if err != nil {
			t.Fatal(err)
		}
		c := newCache(t, cache.Config{Drivers: map[string]driver.Driver{"m": brokenWatch{d}}})
		p := &wait.Probe{Poll: time.Hour} // applies to watched turns only: none here
		acquired, after, err := handoff(t, c, p)
		if why, _ := p.Done(); err != nil || !acquired || why != wait.Polled || after > 25*time.Millisecond {
			t.Fatalf("Lock with Wait on a driver whose Watch fails: acquired %v, err %v, woken by %v %v after the release; want acquired by the poll within 25ms", acquired, err, why, after)
		}
		if p.WatchErrors() == 0 {
			t.Fatal("no failed watch was counted")
		}
	})
}
