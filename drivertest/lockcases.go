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
	"github.com/cachekit/cache/internal/wait"
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
		name: "LockWaitHandoff",
		explanation: "a waiter (LockOptions.Wait) takes the lock when the holder releases it; on a driver whose Watch works it is woken " +
			"by the release itself, not by its poll: with its poll stretched to an hour, only the driver's Watch can wake it",
		needs: lockable,
		f:     testHandoff,
	},
	{
		name: "WatchReportsRelease",
		explanation: "driver.Atomic's Watch: the channel of a Watch is closed when the key is next released by CompareAndDelete " +
			"(a lock's release) or replaced by CompareAndSwap, and when the Watch's ctx ends; not while nobody touches the key",
		needs: append(slices.Clone(lockable), watcher),
		f:     testWatch,
	},
	{
		name:        "LockWaitTimeout",
		explanation: "a wait that runs out says so (ErrWaitTimeout), not before its Wait has elapsed; a ctx that ends says so (its error); and fn does not run",
		needs:       lockable,
		f: func(t *testing.T, e *env) {
			_, _ = lockOnce(e, e.c, "lock.busy", time.Minute, func(context.Context) error {
				// The waiters are other callers: e.ctx, not fn's ctx (a Lock with Wait
				// on fn's ctx would be a nested call, ErrReentrant).
				ctx := e.ctx
				const wait = 3 * ttlUnit / 2
				start := time.Now()
				out, err := cache.LockWith(ctx, e.c, "lock.busy", cache.LockOptions{TTL: time.Minute, Wait: wait},
					func(context.Context) (int, error) { return 1, nil })
				if out.Acquired || !errors.Is(err, cache.ErrWaitTimeout) || !errors.Is(err, cache.ErrNotAcquired) {
					t.Errorf("wait on a held lock = %+v, %v; want ErrWaitTimeout and ErrNotAcquired", out, err)
				}
				if waited := time.Since(start); waited < wait {
					t.Errorf("gave up %v after the call; want not before its Wait, %v", waited, wait)
				}
				cctx, cancel := context.WithTimeout(ctx, ttlUnit/2)
				defer cancel()
				out, err = cache.LockWith(cctx, e.c, "lock.busy", cache.LockOptions{TTL: time.Minute, Wait: hangAfter},
					func(context.Context) (int, error) { return 1, nil })
				if out.Acquired || !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, cache.ErrWaitTimeout) {
					t.Errorf("wait whose ctx ends = %+v, %v; want context.DeadlineExceeded, not ErrWaitTimeout", out, err)
				}
				return nil
			})
		},
	},
	{
		name: "LockCtxEnds",
		explanation: "an acquisition whose ctx ends (before the call, during an attempt, during the read of the held key, during the wait) " +
			"fails with an error matching both cache.ErrNotAcquired and ctx.Err(), from Lock, LockWith with Wait and Acquire; " +
			"Lock without Wait never reports a ctx that had ended as plain contention (Acquired == false with a nil error)",
		needs: lockable,
		f:     testLockCtxEnds,
	},
	{
		name:        "LockTTLCancelsFn",
		explanation: "without AutoExtend, fn's ctx is cancelled with ErrLockLost when the lease ends (not before; the lease ends no later than the TTL after the acquire), and Lock's error says so",
		needs:       lockable,
		f: func(t *testing.T, e *env) {
			var fnErr error
			// The lease runs from the acquire's send time (after call) for the TTL minus
			// the documented margin (TTL/100 + 2 ms, at most TTL/2).
			margin := min(ttlUnit/100+2*time.Millisecond, ttlUnit/2)
			call := time.Now()
			ok, err := lockOnce(e, e.c, "lock.short", ttlUnit, func(ctx context.Context) error {
				inFn := time.Now() // after the acquire was sent
				until := cache.HeldLock(ctx).ValidUntil()
				if until.After(inFn.Add(ttlUnit)) {
					return fmt.Errorf("the lease ends %v after fn started, past the TTL (%v): the store may let another holder in before it", until.Sub(inFn), ttlUnit)
				}
				if until.Before(call.Add(ttlUnit - margin)) {
					return fmt.Errorf("the lease ends %v after the call; want at least the TTL minus the margin, %v", until.Sub(call), ttlUnit-margin)
				}
				select {
				case <-ctx.Done():
				case <-time.After(hangAfter):
					return fmt.Errorf("fn's ctx still live %v after fn started, past the lease (%v): a hang", hangAfter, until.Sub(inFn))
				}
				if at := time.Now(); at.Before(until) {
					return fmt.Errorf("fn's ctx ended %v before the lease did", until.Sub(at))
				}
				if !errors.Is(context.Cause(ctx), cache.ErrLockLost) {
					return fmt.Errorf("cause %v; want ErrLockLost", context.Cause(ctx))
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
		explanation: "with AutoExtend a holder whose fn outlives 5 TTLs keeps the lock: nobody else gets in while its lease runs, and fn's ctx stays live",
		needs:       lockable,
		f:           testAutoExtend,
	},
	{
		name:        "LockLostCancelsFn",
		explanation: "when a renewal finds the lock gone, fn's ctx is cancelled with ErrLockLost: by that renewal, before the lease would have ended",
		needs:       lockable,
		f: func(t *testing.T, e *env) {
			// The first renewal after the delete (one comes every TTL/3) must notice it,
			// before the lease ends (after about a TTL). A renewal that a busy machine
			// delays past the lease's end proves nothing: the lease timer ends fn's ctx
			// first, and the case runs again with a longer TTL.
			withLongerTTLs(t, 3*ttlUnit, func(ttl time.Duration) string {
				key := fmt.Sprintf("lock.lost.%v", ttl)
				var why string
				ok, err := lockOnce2(e, key, cache.LockOptions{TTL: ttl, AutoExtend: true}, func(ctx context.Context) error {
					h := cache.HeldLock(ctx)
					if err := cache.ForceRelease(ctx, e.c, key); err != nil {
						return err
					}
					select {
					case <-ctx.Done():
					case <-time.After(hangAfter):
						return fmt.Errorf("fn's ctx still live %v after the lock was deleted (a hang)", hangAfter)
					}
					at, until := time.Now(), h.ValidUntil()
					if !at.Before(until) {
						why = fmt.Sprintf("fn's ctx ended %v after the lease did: no renewal ran before the lease's end", at.Sub(until))
					}
					return nil
				})
				if !ok || !errors.Is(err, cache.ErrLockLost) {
					t.Fatalf("Lock = %v, %v; want ErrLockLost", ok, err)
				}
				return why
			})
		},
	},
	{
		name:        "FencingTokensIncrease",
		explanation: "fencing tokens strictly increase with every acquisition of a key, whoever acquires",
		needs:       lockable,
		f: func(t *testing.T, e *env) {
			var (
				mu      sync.Mutex
				last    int64
				taken   int
				badSeen []string
			)
			parallel(4, func(int) {
				for range 250 {
					_, err := cache.LockWith(e.ctx, e.c, "lock.fenced", cache.LockOptions{TTL: time.Minute, Fencing: true, Wait: hangAfter},
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
		needs:       lockable,
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
		needs:       lockable,
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
				v, err := cache.RememberWith(e.ctx, caches[i%len(caches)], "cold", cache.RememberOptions{TTL: time.Minute, Distributed: true, LockTTL: hangAfter},
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

// testLockCtxEnds holds a lock and has callers whose ctx ends try to take it: with a
// ctx ended before the call, as waiters whose deadline passes while they wait, and
// without Wait with deadlines of 0 to 2 ms, which end at any step of the attempt.
func testLockCtxEnds(t *testing.T, e *env) {
	never := func(context.Context) (int, error) {
		t.Error("fn ran although the lock is held")
		return 0, nil
	}
	// check reports an acquisition on ctx that did not fail as one whose ctx ended.
	check := func(what string, ctx context.Context, acquired bool, err error) {
		if dl, ok := ctx.Deadline(); ok && ctx.Err() == nil && !time.Now().Before(dl) {
			<-ctx.Done() // the deadline passed; the timer that ends ctx has yet to run
		}
		if acquired || ctx.Err() == nil || !errors.Is(err, cache.ErrNotAcquired) || !errors.Is(err, ctx.Err()) {
			t.Errorf("%s: acquired %v, err %v, ctx.Err() %v; want an error matching ErrNotAcquired and ctx.Err()", what, acquired, err, ctx.Err())
		}
	}
	const key = "lock.ctxend"
	_, err := lockOnce(e, e.c, key, time.Minute, func(context.Context) error {
		ended, cancel := context.WithCancel(e.ctx)
		cancel()
		for _, k := range []string{key, "lock.ctxend.free"} {
			out, err := cache.Lock(ended, e.c, k, time.Minute, never)
			check("Lock on an ended ctx, "+k, ended, out.Acquired, err)
			h, err := cache.Acquire(ended, e.c, k, cache.LockOptions{TTL: time.Minute})
			check("Acquire on an ended ctx, "+k, ended, h != nil, err)
		}
		parallel(e.n, func(i int) {
			wait := time.Duration(i%5+1) * ttlUnit / 10
			wctx, cancel := context.WithTimeout(e.ctx, wait)
			defer cancel()
			out, err := cache.LockWith(wctx, e.c, key, cache.LockOptions{TTL: time.Minute, Wait: hangAfter}, never)
			check(fmt.Sprintf("a waiter whose deadline (%v) passed", wait), wctx, out.Acquired, err)
			actx, cancel := context.WithTimeout(e.ctx, wait)
			defer cancel()
			h, err := cache.Acquire(actx, e.c, key, cache.LockOptions{TTL: time.Minute, Wait: hangAfter})
			check(fmt.Sprintf("Acquire waiting, deadline %v", wait), actx, h != nil, err)
		})
		parallel(e.n, func(i int) {
			for j := range 20 {
				rctx, cancel := context.WithTimeout(e.ctx, time.Duration((i+j)%21)*100*time.Microsecond)
				endedBefore := rctx.Err() != nil
				out, err := cache.Lock(rctx, e.c, key, time.Minute, never)
				switch {
				case err != nil:
					check("Lock whose ctx ended during the call", rctx, out.Acquired, err)
				case endedBefore:
					t.Errorf("Lock on a ctx that had ended = %+v, nil; want an error matching ErrNotAcquired and ctx.Err()", out)
				}
				cancel()
			}
		})
		return nil
	})
	if err != nil {
		t.Fatalf("the holder's Lock: %v", err)
	}
}

func lockOnce2(e *env, key string, o cache.LockOptions, fn func(context.Context) error) (bool, error) {
	out, err := cache.LockWith(e.ctx, e.c, key, o, func(ctx context.Context) (struct{}, error) {
		return struct{}{}, fn(ctx)
	})
	return out.Acquired, err
}

// testHandoff hands a lock from a holder to a waiter, handoffs times. The holder releases
// only once the waiter's first attempt in its wait loop has failed, so that the waiter
// is waiting when the release comes. The waiter's loop reports to a wait.Probe why each
// attempt ran: on a driver whose Watch works the probe stretches the poll to an hour, so the
// waiter gets the lock in time only if the release woke it; without one the poll
// is what wakes it.
func testHandoff(t *testing.T, e *env) {
	const handoffs = 20
	watched := watcher.has(e.d)
	var byWatch, watchFailed int
	for i := range handoffs {
		key := fmt.Sprintf("lock.handoff.%d", i)
		h, err := cache.Acquire(e.ctx, e.c, key, cache.LockOptions{TTL: time.Minute})
		if err != nil {
			t.Fatalf("handoff %d: the holder: %v", i, err)
		}
		p := &wait.Probe{}
		if watched {
			p.Poll = time.Hour
		}
		waiting := make(chan struct{})
		var once sync.Once
		p.Tried = func(_ wait.Why, done bool, err error) {
			if !done && err == nil {
				once.Do(func() { close(waiting) })
			}
		}
		res := make(chan error, 1)
		go func() {
			out, err := cache.LockWith(wait.WithProbe(e.ctx, p), e.c, key, cache.LockOptions{TTL: time.Minute, Wait: hangAfter},
				func(context.Context) (struct{}, error) { return struct{}{}, nil })
			if err == nil && !out.Acquired {
				err = errors.New("not acquired, no error")
			}
			res <- err
		}()
		select {
		case <-waiting:
		case err := <-res:
			t.Fatalf("handoff %d: the waiter returned before it waited: %v", i, err)
		}
		if err := h.Release(e.ctx); err != nil {
			t.Fatalf("handoff %d: release: %v", i, err)
		}
		err = <-res
		why, _ := p.Done()
		switch {
		case err != nil && watched && p.WatchErrors() == 0:
			t.Fatalf("handoff %d: the waiter was not woken by the release (its poll stretched to an hour, only the driver's Watch could wake it in the %v it waited): %v", i, hangAfter, err)
		case err != nil:
			t.Fatalf("handoff %d: the waiter did not get the released lock: %v", i, err)
		case !watched && why != wait.Polled:
			t.Fatalf("handoff %d: the waiter's winning attempt was %v; want polled (the release came after its first attempt failed)", i, why)
		case watched && why == wait.Watched:
			byWatch++
		case watched && p.WatchErrors() > 0:
			watchFailed++ // a Watch may fail (it is a hint): the turn without one polled
		case watched:
			t.Fatalf("handoff %d: the waiter's winning attempt was %v; want watched: woken by the release (with its poll stretched to an hour, a poll wins only when the %v Wait ends)", i, why, hangAfter)
		}
	}
	switch {
	case !watched:
		t.Logf("%d handoffs, each woken by the waiter's poll (%T has no working Watch)", handoffs, e.d)
	case byWatch == 0:
		t.Fatalf("no handoff of %d was woken by the release: the driver's Watch failed in every one", handoffs)
	default:
		t.Logf("%d handoffs woken by the release; %d by a poll after the driver's Watch failed", byWatch, watchFailed)
	}
}

// testWatch checks driver.Atomic's Watch directly, on the driver's own calls.
func testWatch(t *testing.T, e *env) {
	w := e.d.(driver.Atomic)
	final := func(key string) string { return e.prefix + "." + key }
	closed := func(ch <-chan struct{}) bool {
		select {
		case <-ch:
			return true
		default:
			return false
		}
	}
	// wait fails the case if ch is not closed within hangAfter (a hang detector).
	wait := func(ch <-chan struct{}, what string) {
		t.Helper()
		select {
		case <-ch:
		case <-time.After(hangAfter):
			t.Fatalf("%s: the Watch channel is still open %v later (a hang)", what, hangAfter)
		}
	}

	// watchKey is w.Watch of key, asked again while it fails: a driver may refuse a
	// Watch while its notification connection is down (lock waiters then poll), which a
	// busy machine can cause; a Watch refused for hangAfter fails the case.
	watchKey := func(key string) (<-chan struct{}, error) {
		t.Helper()
		for start := time.Now(); ; time.Sleep(10 * time.Millisecond) {
			ch, err := w.Watch(e.ctx, key)
			if err == nil || time.Since(start) > hangAfter {
				return ch, err
			}
			t.Logf("Watch refused, asked again: %v", err)
		}
	}

	// A lock's release.
	h, err := cache.Acquire(e.ctx, e.c, "watch.lock", cache.LockOptions{TTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	ch, err := watchKey(final("watch.lock"))
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}
	mustSet(t, e, "watch.other", "x", time.Minute) // another key
	if _, err := h.TTL(e.ctx); err != nil {
		t.Fatal(err)
	}
	if closed(ch) {
		t.Fatal("the Watch channel closed while nobody touched the key")
	}
	if err := h.Release(e.ctx); err != nil {
		t.Fatal(err)
	}
	wait(ch, "CompareAndDelete (a lock's release)")

	// A compare-and-swap.
	if sw, ok := e.d.(driver.Atomic); ok {
		mustSet(t, e, "watch.cas", "old", time.Minute)
		old, found, err := e.d.Get(e.ctx, final("watch.cas"))
		if err != nil || !found {
			t.Fatalf("driver Get = %v, %v", found, err)
		}
		ch, err := watchKey(final("watch.cas"))
		if err != nil {
			t.Fatalf("Watch: %v", err)
		}
		var v any = "new"
		if enc, ok := e.d.(driver.Encoder); ok {
			if v, err = enc.Codec().Marshal("new"); err != nil {
				t.Fatal(err)
			}
		}
		if ok, err := sw.CompareAndSwap(e.ctx, old, driver.Entry{Key: final("watch.cas"), Value: v, TTL: time.Minute}); err != nil || !ok {
			t.Fatalf("CompareAndSwap = %v, %v", ok, err)
		}
		wait(ch, "CompareAndSwap")
	}

	// The Watch's ctx ends.
	ctx, cancel := context.WithCancel(e.ctx)
	ch, err = w.Watch(ctx, final("watch.idle"))
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}
	cancel()
	wait(ch, "the Watch's ctx ended")
}

// testAutoExtend holds a lock with AutoExtend for 5 TTLs while intruders keep trying to
// take it. An intruder that gets in while the holder's lease runs breaks the promise.
// One that gets in after the lease ended, or a holder whose fn's ctx ends, is what a
// lease does when renewals come too late (a busy machine): inconclusive, and the case
// runs again with a longer TTL.
func testAutoExtend(t *testing.T, e *env) {
	withLongerTTLs(t, 4*ttlUnit, func(ttl time.Duration) string {
		key := fmt.Sprintf("lock.long.%v", ttl)
		var (
			mu      sync.Mutex
			holder  *cache.LockHandle
			intrude []string // intruders that got in during the holder's lease
			late    []string // intruders that got in after it
		)
		stop := make(chan struct{})
		var wg sync.WaitGroup
		out, err := cache.LockWith(e.ctx, e.c, key, cache.LockOptions{TTL: ttl, AutoExtend: true},
			func(ctx context.Context) (int, error) {
				mu.Lock()
				holder = cache.HeldLock(ctx)
				mu.Unlock()
				wg.Go(func() {
					for {
						select {
						case <-stop:
							return
						case <-time.After(ttl / 4):
						}
						_, err := lockOnce(e, e.c, key, time.Minute, func(context.Context) error {
							at := time.Now()
							mu.Lock()
							defer mu.Unlock()
							// The holder's lease only grows, and a renewal sent before the
							// intruder got in cannot be confirmed after: read after at, it
							// tells whether at was within the lease.
							if until := holder.ValidUntil(); at.Before(until) {
								intrude = append(intrude, fmt.Sprintf("%v before the lease's end", until.Sub(at)))
							} else {
								late = append(late, fmt.Sprintf("%v after the lease's end", at.Sub(until)))
							}
							return nil
						})
						if err != nil {
							t.Errorf("an intruder's Lock: %v", err)
						}
					}
				})
				defer func() {
					close(stop)
					wg.Wait()
				}()
				select {
				case <-time.After(5 * ttl):
					return 1, nil
				case <-ctx.Done():
					return 0, context.Cause(ctx)
				}
			})
		mu.Lock()
		defer mu.Unlock()
		if len(intrude) > 0 {
			t.Fatalf("TTL %v: %d other callers took the lock while AutoExtend kept it, %q (Lock = %+v, %v)", ttl, len(intrude), intrude, out, err)
		}
		switch {
		case errors.Is(err, cache.ErrLockLost):
			return fmt.Sprintf("the holder lost the lock (%v); intruders after the lease's end: %q", err, late)
		case err != nil || !out.Acquired || out.Value != 1:
			t.Fatalf("LockWith AutoExtend = %+v, %v; want fn to run 5 TTLs and return 1", out, err)
		case len(late) > 0:
			t.Fatalf("TTL %v: other callers took the lock while fn ran with a live ctx: %q", ttl, late)
		}
		return ""
	})
}
