package drivertest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cachekit/cache"
	"github.com/cachekit/cache/driver"
)

var (
	extender = capOf[driver.Extender]("driver.Extender")
	swapper  = capOf[driver.Swapper]("driver.Swapper")
	fencer   = capOf[driver.Fencer]("driver.Fencer")
	watcher  = capOf[driver.Watcher]("driver.Watcher")
)

// lockCases are the promises of the lock beyond acquire and release: waiting, renewal, fencing,
// handles, Once, and distributed Remember.
var lockCases = []testCase{
	{
		name:        "LockOverAValueThatIsNotALock",
		explanation: "Lock and Acquire on a key that holds a value that is not a lock (an integer written by Set) return an error matching cache.ErrNotALock, never Acquired == false forever, and leave the value as it was; a string there (another library's owner label) is plain contention",
		needs:       lockable,
		f: func(t *testing.T, e *env) {
			if err := e.c.Set(e.ctx, "lock.notalock", 42, time.Minute); err != nil {
				t.Fatal(err)
			}
			out, err := cache.Lock(e.ctx, e.c, "lock.notalock", time.Minute, func(context.Context) (int, error) { return 1, nil })
			if out.Acquired || !errors.Is(err, cache.ErrNotALock) {
				t.Fatalf("Lock over an integer: acquired %v, err %v; want an error matching ErrNotALock", out.Acquired, err)
			}
			if _, err := cache.Acquire(e.ctx, e.c, "lock.notalock", cache.LockOptions{TTL: time.Minute, Wait: time.Second}); !errors.Is(err, cache.ErrNotALock) {
				t.Fatalf("Acquire with Wait over an integer: %v; want ErrNotALock at once", err)
			}
			var n int
			if found, err := e.c.Get(e.ctx, "lock.notalock", &n); err != nil || !found || n != 42 {
				t.Fatalf("the value was touched: %d, found %v, err %v", n, found, err)
			}
			if err := e.c.Set(e.ctx, "lock.label", "pid.4242", time.Minute); err != nil {
				t.Fatal(err)
			}
			out, err = cache.Lock(e.ctx, e.c, "lock.label", time.Minute, func(context.Context) (int, error) { return 1, nil })
			if out.Acquired || err != nil {
				t.Fatalf("Lock over an owner label: acquired %v, err %v; want plain contention", out.Acquired, err)
			}
		},
	},
	{
		name:        "LockWaitHandoff",
		explanation: "a waiter (LockOptions.Wait) acquires promptly when the holder releases: on a driver.Watcher, within 10 ms (median of 50 handoffs)",
		needs:       lockable,
		f: func(t *testing.T, e *env) {
			const handoffs = 50
			lat := make([]time.Duration, 0, handoffs)
			for i := range handoffs {
				key := fmt.Sprintf("lock.handoff.%d", i)
				held := make(chan struct{})
				var released atomic.Int64
				go func() {
					_, _ = lockOnce(e, e.c, key, time.Minute, func(context.Context) error {
						close(held)
						// Long enough for a waiter's poll to have backed off: a prompt
						// handoff then needs the release notification.
						time.Sleep(50 * time.Millisecond)
						released.Store(time.Now().UnixNano())
						return nil
					})
				}()
				<-held
				out, err := cache.LockWith(e.ctx, e.c, key, cache.LockOptions{TTL: time.Minute, Wait: 5 * time.Second},
					func(context.Context) (time.Time, error) { return time.Now(), nil })
				if err != nil || !out.Acquired {
					t.Fatalf("handoff %d: waiter = %+v, %v", i, out, err)
				}
				lat = append(lat, out.Value.Sub(time.Unix(0, released.Load())))
			}
			slices.Sort(lat)
			median := lat[len(lat)/2]
			t.Logf("release-to-next-holder latency over %d handoffs: median %v, p90 %v, max %v", handoffs, median, lat[len(lat)*9/10], lat[len(lat)-1])
			limit := 50 * time.Millisecond // polling with backoff
			if watcher.has(e.d) {
				limit = 10 * time.Millisecond
			}
			if median > limit {
				t.Fatalf("median handoff %v; want under %v", median, limit)
			}
		},
	},
	{
		name:        "LockWaitTimeout",
		explanation: "a wait that runs out says so (ErrWaitTimeout), a ctx that ends says so (its error), and fn does not run",
		needs:       lockable,
		f: func(t *testing.T, e *env) {
			_, _ = lockOnce(e, e.c, "lock.busy", time.Minute, func(ctx context.Context) error {
				start := time.Now()
				out, err := cache.LockWith(ctx, e.c, "lock.busy", cache.LockOptions{TTL: time.Minute, Wait: 3 * ttlUnit / 2},
					func(context.Context) (int, error) { return 1, nil })
				if out.Acquired || !errors.Is(err, cache.ErrWaitTimeout) || !errors.Is(err, cache.ErrNotAcquired) {
					t.Errorf("wait on a held lock = %+v, %v; want ErrWaitTimeout and ErrNotAcquired", out, err)
				}
				if waited := time.Since(start); waited < 3*ttlUnit/2 || waited > 3*ttlUnit/2+time.Second {
					t.Errorf("waited %v; want about %v", waited, 3*ttlUnit/2)
				}
				cctx, cancel := context.WithTimeout(ctx, ttlUnit/2)
				defer cancel()
				out, err = cache.LockWith(cctx, e.c, "lock.busy", cache.LockOptions{TTL: time.Minute, Wait: time.Minute},
					func(context.Context) (int, error) { return 1, nil })
				if out.Acquired || !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, cache.ErrWaitTimeout) {
					t.Errorf("wait whose ctx ends = %+v, %v; want context.DeadlineExceeded, not ErrWaitTimeout", out, err)
				}
				return nil
			})
		},
	},
	{
		name:        "LockTTLCancelsFn",
		explanation: "without AutoExtend, fn's ctx is cancelled with ErrLockLost when the TTL runs out, and Lock's error says so",
		needs:       lockable,
		f: func(t *testing.T, e *env) {
			start := time.Now()
			var fnErr error
			ok, err := lockOnce(e, e.c, "lock.short", ttlUnit, func(ctx context.Context) error {
				select {
				case <-ctx.Done():
				case <-time.After(10 * ttlUnit):
					return errors.New("fn's ctx outlived the lock's TTL")
				}
				if !errors.Is(context.Cause(ctx), cache.ErrLockLost) {
					return fmt.Errorf("cause %v; want ErrLockLost", context.Cause(ctx))
				}
				if el := time.Since(start); el < ttlUnit-10*time.Millisecond {
					return fmt.Errorf("cancelled after %v, before the TTL of %v", el, ttlUnit)
				}
				fnErr = ctx.Err()
				return fnErr
			})
			if !ok || !errors.Is(err, cache.ErrLockLost) || fnErr == nil || !errors.Is(err, fnErr) {
				t.Fatalf("Lock = %v, %v; want ErrLockLost joined to fn's error", ok, err)
			}
		},
	},
	{
		name:        "LockAutoExtend",
		explanation: "with AutoExtend a holder whose fn outlives 5 TTLs keeps the lock: nobody else gets in",
		needs:       append(slices.Clone(lockable), extender),
		f: func(t *testing.T, e *env) {
			var intruders atomic.Int64
			stop := make(chan struct{})
			var wg sync.WaitGroup
			// 4 × ttlUnit: a renewal gets one interval (TTL/3), and the lease ends a TTL after
			// the last confirmed renewal was sent, which must hold on a loaded CI machine with
			// the race detector.
			ttl := 4 * ttlUnit
			out, err := cache.LockWith(e.ctx, e.c, "lock.long", cache.LockOptions{TTL: ttl, AutoExtend: true},
				func(ctx context.Context) (int, error) {
					wg.Go(func() {
						for {
							select {
							case <-stop:
								return
							case <-time.After(ttl / 4):
							}
							if ok, err := lockOnce(e, e.c, "lock.long", time.Minute, noop); ok || err != nil {
								intruders.Add(1)
							}
						}
					})
					select {
					case <-time.After(5 * ttl):
					case <-ctx.Done():
						return 0, fmt.Errorf("fn's ctx ended: %w", context.Cause(ctx))
					}
					close(stop)
					wg.Wait()
					return 1, nil
				})
			if err != nil || !out.Acquired {
				t.Fatalf("LockWith AutoExtend = %+v, %v", out, err)
			}
			if n := intruders.Load(); n != 0 {
				t.Fatalf("%d other callers took a lock that AutoExtend kept", n)
			}
		},
	},
	{
		name:        "LockLostCancelsFn",
		explanation: "when a renewal finds the lock gone, fn's ctx is cancelled with ErrLockLost within one renewal interval",
		needs:       append(slices.Clone(lockable), extender),
		f: func(t *testing.T, e *env) {
			var deleted time.Time
			ok, err := lockOnce2(e, "lock.lost", cache.LockOptions{TTL: 3 * ttlUnit, AutoExtend: true}, func(ctx context.Context) error {
				time.Sleep(ttlUnit / 3)
				if err := cache.ForceRelease(ctx, e.c, "lock.lost"); err != nil {
					return err
				}
				deleted = time.Now()
				select {
				case <-ctx.Done():
				case <-time.After(10 * ttlUnit):
					return errors.New("fn's ctx was not cancelled after the lock was deleted")
				}
				if within := time.Since(deleted); within > ttlUnit+50*time.Millisecond { // one interval is TTL/3 = ttlUnit
					return fmt.Errorf("cancelled %v after the delete; want within one renewal interval (%v)", within, ttlUnit)
				}
				return nil
			})
			if !ok || !errors.Is(err, cache.ErrLockLost) {
				t.Fatalf("Lock = %v, %v; want ErrLockLost", ok, err)
			}
		},
	},
	{
		name:        "FencingTokensIncrease",
		explanation: "fencing tokens strictly increase with every acquisition of a key, whoever acquires",
		needs:       append(slices.Clone(lockable), fencer),
		f: func(t *testing.T, e *env) {
			var (
				mu      sync.Mutex
				last    int64
				taken   int
				badSeen []string
			)
			parallel(4, func(int) {
				for range 250 {
					_, err := cache.LockWith(e.ctx, e.c, "lock.fenced", cache.LockOptions{TTL: time.Minute, Fencing: true, Wait: 10 * time.Second},
						func(ctx context.Context) (int, error) {
							tok := cache.HeldLock(ctx).FencingToken()
							mu.Lock()
							defer mu.Unlock()
							if tok <= last {
								badSeen = append(badSeen, fmt.Sprintf("%d after %d", tok, last))
							}
							last = tok
							taken++
							return 0, nil
						})
					if err != nil {
						t.Errorf("LockWith Fencing: %v", err)
						return
					}
				}
			})
			if len(badSeen) > 0 || taken != 1000 {
				t.Fatalf("%d acquisitions; tokens that did not increase: %v", taken, badSeen)
			}
			if tok := cache.HeldLock(e.ctx).FencingToken(); tok != 0 {
				t.Fatalf("a fencing token outside fn: %d", tok)
			}
		},
	},
	{
		name:        "LockHandle",
		explanation: "Acquire returns a handle: TTL, Extend and Release work while held; on a lost lock they return ErrLockNotHeld; RestoreLock hands ownership over",
		needs:       append(slices.Clone(lockable), extender),
		f: func(t *testing.T, e *env) {
			h, err := cache.Acquire(e.ctx, e.c, "lock.h", cache.LockOptions{TTL: time.Minute, Owner: "leader"})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := cache.Acquire(e.ctx, e.c, "lock.h", cache.LockOptions{TTL: time.Minute}); !errors.Is(err, cache.ErrNotAcquired) {
				t.Fatalf("second Acquire = %v; want ErrNotAcquired", err)
			}
			if ttl, err := h.TTL(e.ctx); err != nil || ttl == 0 || ttl > time.Minute {
				t.Fatalf("TTL = %v, %v; want in (0, 1m] or -1", ttl, err)
			}
			if err := h.Extend(e.ctx, 2*time.Minute); err != nil {
				t.Fatal(err)
			}
			info, err := cache.InspectLock(e.ctx, e.c, "lock.h")
			if err != nil || !info.Held || info.Owner != "leader" || info.Token != h.Token() || (info.TTL != -1 && info.TTL <= time.Minute) {
				t.Fatalf("InspectLock = %+v, %v; want held by leader with the extended TTL", info, err)
			}
			// Another goroutine (or process) that was handed the token releases it.
			r, err := cache.RestoreLock(e.ctx, e.c, "lock.h", h.Token(), cache.LockOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if err := r.Release(e.ctx); err != nil {
				t.Fatalf("Release through RestoreLock: %v", err)
			}
			for what, err := range map[string]error{
				"Release": h.Release(e.ctx), "Extend": h.Extend(e.ctx, time.Minute),
				"nil Release": (*cache.LockHandle)(nil).Release(e.ctx),
			} {
				if !errors.Is(err, cache.ErrLockNotHeld) {
					t.Errorf("%s of a released lock = %v; want ErrLockNotHeld", what, err)
				}
			}
			if _, err := h.TTL(e.ctx); !errors.Is(err, cache.ErrLockNotHeld) {
				t.Errorf("TTL of a released lock = %v; want ErrLockNotHeld", err)
			}
			if info, err := cache.InspectLock(e.ctx, e.c, "lock.h"); err != nil || info.Held {
				t.Fatalf("InspectLock after release = %+v, %v", info, err)
			}
		},
	},
	{
		name:        "OnceRunsOnce",
		explanation: "Once runs fn once per key within the TTL: concurrent and later callers get the first result; an error frees the key",
		needs:       append(slices.Clone(lockable), extender, swapper),
		f: func(t *testing.T, e *env) {
			var calls, ran atomic.Int64
			parallel(e.n, func(int) {
				out, err := cache.Once(e.ctx, e.c, "webhook.evt_1", time.Minute, func(context.Context) (string, error) {
					calls.Add(1)
					time.Sleep(20 * time.Millisecond)
					return "processed", nil
				})
				if err != nil || out.Value != "processed" {
					t.Errorf("Once = %+v, %v", out, err)
				}
				if out.Ran {
					ran.Add(1)
				}
			})
			if calls.Load() != 1 || ran.Load() != 1 {
				t.Fatalf("fn ran %d times (Ran reported %d) for %d concurrent callers; want 1", calls.Load(), ran.Load(), e.n)
			}
			// A retry after the work finished: not run again.
			out, err := cache.Once(e.ctx, e.c, "webhook.evt_1", time.Minute, func(context.Context) (string, error) {
				t.Error("fn ran again within the TTL")
				return "", nil
			})
			if err != nil || out.Ran || out.Value != "processed" {
				t.Fatalf("a later Once = %+v, %v; want the first result", out, err)
			}
			// A failure frees the key for a retry.
			_, err = cache.Once(e.ctx, e.c, "webhook.evt_2", time.Minute, func(context.Context) (int, error) { return 0, errBoom })
			isErr(t, "Once with a failing fn", err, errBoom)
			out2, err := cache.Once(e.ctx, e.c, "webhook.evt_2", time.Minute, func(context.Context) (int, error) { return 2, nil })
			if err != nil || !out2.Ran || out2.Value != 2 {
				t.Fatalf("a retry after a failure = %+v, %v; want it to run", out2, err)
			}
		},
	},
	{
		name:        "RememberDistributed",
		explanation: "with Distributed, one loader runs for a cold key across caches (processes) that share the store",
		needs:       lockable,
		f: func(t *testing.T, e *env) {
			caches := []*cache.Cache{e.c, e.sibling(t, e.prefix), e.sibling(t, e.prefix), e.sibling(t, e.prefix)}
			var calls atomic.Int64
			parallel(len(caches)*10, func(i int) {
				v, err := cache.RememberWith(e.ctx, caches[i%len(caches)], "cold", cache.RememberOptions{TTL: time.Minute, Distributed: true, LockTTL: 5 * time.Second},
					func(context.Context) (int, error) {
						calls.Add(1)
						time.Sleep(50 * time.Millisecond)
						return 42, nil
					})
				if err != nil || v != 42 {
					t.Errorf("RememberWith = %d, %v", v, err)
				}
			})
			if n := calls.Load(); n != 1 {
				t.Fatalf("the loader ran %d times across %d caches; want 1", n, len(caches))
			}
		},
	},
}

func lockOnce2(e *env, key string, o cache.LockOptions, fn func(context.Context) error) (bool, error) {
	out, err := cache.LockWith(e.ctx, e.c, key, o, func(ctx context.Context) (struct{}, error) {
		return struct{}{}, fn(ctx)
	})
	return out.Acquired, err
}
