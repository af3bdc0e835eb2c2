package cache_test

import (
	"context"
	"errors"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cachekit/cache"
	"github.com/cachekit/cache/driver"
	"github.com/cachekit/cache/drivers/memorycache"
)

// hung wraps the memory driver; while stuck is set, Extend blocks until release is
// closed, whatever its context says: a client whose commands wait out a frozen
// connection without looking at their deadline.
type hung struct {
	*memorycache.Driver
	stuck   atomic.Bool
	delay   atomic.Int64 // Extend answers after this long (nanoseconds), ignoring ctx
	calls   atomic.Int32
	release chan struct{}
	once    sync.Once
}

// free lets every Extend stuck in h go, and lets the goroutines of the lock's upkeep
// that wait for them end: a synctest bubble ends only when all its goroutines have.
func (h *hung) free() {
	h.once.Do(func() { close(h.release) })
	time.Sleep(time.Second) // a delayed Extend is done by then (fake time in a bubble)
	synctest.Wait()
}

func newHung(t *testing.T) *hung {
	d, err := memorycache.New(memorycache.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return &hung{Driver: d, release: make(chan struct{})}
}

func (h *hung) Extend(ctx context.Context, key string, old any, ttl time.Duration) (bool, error) {
	h.calls.Add(1)
	if h.stuck.Load() {
		<-h.release
		return false, errors.New("hung: connection reset")
	}
	if d := time.Duration(h.delay.Load()); d > 0 {
		time.Sleep(d)
	}
	return h.Driver.Extend(ctx, key, old, ttl)
}

func hungCache(t *testing.T, d *hung) *cache.Cache {
	t.Helper()
	c, err := cache.New(cache.Config{Drivers: map[string]cache.Driver{"hung": d}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// margin is the lease's drift allowance, as documented on LockHandle.ValidUntil.
func margin(ttl time.Duration) time.Duration {
	return min(ttl/100+2*time.Millisecond, ttl/2)
}

// Without AutoExtend, fn's ctx ends at the lease's end: the acquire's send time plus
// the TTL minus the margin, before the store lets anyone else in.
func TestLease_WithoutAutoExtendEndsBeforeTheStoreExpires(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCache(t, cache.Config{})
		ctx := ctxT(t)
		const ttl = 200 * time.Millisecond
		before := time.Now()
		var until time.Time
		var cancelledAt time.Time
		var heldAtCancel bool
		out, err := cache.Lock(ctx, c, "lease.plain", ttl, func(fctx context.Context) (int, error) {
			var ok bool
			until, ok = cache.HeldLock(fctx).ValidUntil(), cache.HeldLock(fctx) != nil
			if !ok {
				t.Error("HeldLock inside fn: nil")
			}
			if dl, ok := fctx.Deadline(); !ok || !dl.Equal(until) {
				t.Errorf("fn's deadline %v, ok %v; want the lease's end %v", dl, ok, until)
			}
			<-fctx.Done()
			cancelledAt = time.Now()
			// Nobody else can have the key yet: the store's TTL runs at least margin longer.
			_, aerr := cache.Acquire(context.Background(), c, "lease.plain", cache.LockOptions{TTL: time.Second})
			heldAtCancel = errors.Is(aerr, cache.ErrNotAcquired)
			return 0, context.Cause(fctx)
		})
		if !out.Acquired {
			t.Fatal("not acquired")
		}
		if !errors.Is(err, cache.ErrLockLost) {
			t.Fatalf("Lock's error %v; want ErrLockLost", err)
		}
		// The bubble's clock stands still while nothing waits: the acquire is sent at
		// the moment of the call, and the lease and fn's ctx end exactly on time.
		if want := before.Add(ttl - margin(ttl)); !until.Equal(want) {
			t.Errorf("lease ends %v after the call; want %v", until.Sub(before), ttl-margin(ttl))
		}
		if !cancelledAt.Equal(until) {
			t.Errorf("fn's ctx ended %v after the lease's end; want at it", cancelledAt.Sub(until))
		}
		if !heldAtCancel {
			t.Error("when fn's ctx ended another caller could take the lock: no margin")
		}
		if cache.HeldLock(ctx) != nil {
			t.Error("HeldLock outside fn: not nil")
		}
	})
}

// A renewal stuck in the driver (a client that ignores its context on a frozen
// connection) cannot keep fn running past the lease, and cannot hold up Lock's return.
func TestLease_HungRenewalEndsFnAtTheLease(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := newHung(t)
		defer d.free()
		c := hungCache(t, d)
		ctx := ctxT(t)
		const ttl = 300 * time.Millisecond
		d.stuck.Store(true)
		start := time.Now()
		var lostAfter time.Duration
		var until time.Time
		out, err := cache.LockWith(ctx, c, "lease.hung", cache.LockOptions{TTL: ttl, AutoExtend: true}, func(fctx context.Context) (int, error) {
			until = cache.HeldLock(fctx).ValidUntil()
			<-fctx.Done()
			lostAfter = time.Since(start)
			return 0, context.Cause(fctx)
		})
		took := time.Since(start)
		if !out.Acquired || !errors.Is(err, cache.ErrLockLost) {
			t.Fatalf("acquired %v, err %v; want acquired and ErrLockLost", out.Acquired, err)
		}
		if d.calls.Load() == 0 {
			t.Fatal("no renewal was tried")
		}
		// The first renewal goes out at TTL/3 and gets TTL/3 to answer: fn's ctx ends
		// then, before the lease does, and Lock returns at once.
		if want := 2 * ttl / 3; lostAfter != want || !start.Add(lostAfter).Before(until) {
			t.Errorf("fn's ctx ended %v after the acquire; want %v, when the renewal's time was up (the lease ends at %v)", lostAfter, want, until.Sub(start))
		}
		if took != lostAfter {
			t.Errorf("Lock returned %v after the call, %v after fn's ctx ended: it waited for the stuck renewal", took, took-lostAfter)
		}
	})
}

// A renewal whose answer does not come back within its interval (TTL/3) ends fn's ctx
// then: the lease is not extended by an answer that comes later.
func TestLease_LateRenewalReplyDoesNotExtend(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := newHung(t)
		defer d.free()
		c := hungCache(t, d)
		ctx := ctxT(t)
		const ttl = 300 * time.Millisecond
		d.delay.Store(int64(ttl)) // every renewal answers a full TTL later: past the lease
		start := time.Now()
		out, err := cache.LockWith(ctx, c, "lease.late", cache.LockOptions{TTL: ttl, AutoExtend: true}, func(fctx context.Context) (int, error) {
			<-fctx.Done()
			if d, want := time.Since(start), 2*ttl/3; d != want {
				t.Errorf("fn's ctx ended %v after the acquire; want %v, when the first renewal's time was up", d, want)
			}
			return 0, context.Cause(fctx)
		})
		if !out.Acquired || !errors.Is(err, cache.ErrLockLost) {
			t.Fatalf("acquired %v, err %v; want acquired and ErrLockLost", out.Acquired, err)
		}
	})
}

// Confirmed renewals move the lease: fn outlives several TTLs, and its ValidUntil moves.
func TestLease_ConfirmedRenewalsMoveTheLease(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCache(t, cache.Config{})
		ctx := ctxT(t)
		const ttl = 150 * time.Millisecond
		out, err := cache.LockWith(ctx, c, "lease.renewed", cache.LockOptions{TTL: ttl, AutoExtend: true}, func(fctx context.Context) (int, error) {
			first := cache.HeldLock(fctx).ValidUntil()
			deadline := time.Now().Add(3 * ttl)
			for time.Now().Before(deadline) {
				u := cache.HeldLock(fctx).ValidUntil()
				if !time.Now().Before(u) {
					t.Errorf("lease ended at %v while renewals were confirmed", u)
					break
				}
				if fctx.Err() != nil {
					return 0, context.Cause(fctx)
				}
				time.Sleep(5 * time.Millisecond)
			}
			last := cache.HeldLock(fctx).ValidUntil()
			if !last.After(first.Add(ttl)) {
				t.Errorf("lease moved %v in 3 TTLs", last.Sub(first))
			}
			return 1, nil
		})
		if err != nil || !out.Acquired {
			t.Fatalf("acquired %v, err %v", out.Acquired, err)
		}
	})
}

// A handle's lease: set by Acquire, moved only by a confirmed Extend, and a Release
// after it ended says so.
func TestLease_Handle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := newHung(t)
		defer d.free()
		c := hungCache(t, d)
		ctx := ctxT(t)
		const ttl = 100 * time.Millisecond
		before := time.Now()
		h, err := cache.Acquire(ctx, c, "lease.handle", cache.LockOptions{TTL: ttl})
		if err != nil {
			t.Fatal(err)
		}
		u0 := h.ValidUntil()
		if !u0.Equal(before.Add(ttl - margin(ttl))) {
			t.Fatalf("ValidUntil %v after the call; want %v", u0.Sub(before), ttl-margin(ttl))
		}
		time.Sleep(10 * time.Millisecond)
		if err := h.Extend(ctx, 0); err != nil {
			t.Fatal(err)
		}
		u1 := h.ValidUntil()
		if !u1.After(u0) {
			t.Fatalf("a confirmed Extend did not move the lease: %v then %v", u0, u1)
		}
		// An Extend with no answer in time returns at its deadline (even from a driver that
		// ignores it) and leaves the lease alone.
		d.stuck.Store(true)
		ectx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
		defer cancel()
		t0 := time.Now()
		if err := h.Extend(ectx, 0); err == nil {
			t.Fatal("Extend on a hung driver: nil error")
		}
		if took := time.Since(t0); took != 20*time.Millisecond {
			t.Errorf("Extend on a hung driver took %v for a 20ms deadline; want it to return at the deadline", took)
		}
		d.stuck.Store(false)
		if got := h.ValidUntil(); !got.Equal(u1) {
			t.Fatalf("an unanswered Extend moved the lease: %v then %v", u1, got)
		}
		// Past the lease: Release deletes the key (still ours in the store here) but reports
		// that the lease had ended.
		time.Sleep(time.Until(u1) + 5*time.Millisecond)
		err = h.Release(ctx)
		if !errors.Is(err, cache.ErrLockLost) {
			t.Fatalf("Release after the lease's end: %v; want ErrLockLost", err)
		}
	})
}

// A TTL of math.MaxInt64 ("forever") gives a lease far in the future, not an overflow.
func TestLease_HugeTTL(t *testing.T) {
	c := newCache(t, cache.Config{})
	ctx := ctxT(t)
	h, err := cache.Acquire(ctx, c, "lease.forever", cache.LockOptions{TTL: math.MaxInt64})
	if err != nil {
		t.Fatal(err)
	}
	if u := h.ValidUntil(); u.Before(time.Now().Add(50 * 365 * 24 * time.Hour)) {
		t.Fatalf("ValidUntil %v for a TTL of math.MaxInt64", u)
	}
	if err := h.Release(ctx); err != nil {
		t.Fatal(err)
	}
	out, err := cache.Lock(ctx, c, "lease.forever", math.MaxInt64, func(fctx context.Context) (bool, error) {
		return fctx.Err() == nil, nil
	})
	if err != nil || !out.Acquired || !out.Value {
		t.Fatalf("Lock with TTL math.MaxInt64: acquired %v, ctx live %v, err %v", out.Acquired, out.Value, err)
	}
}

// The restored handle knows no lease until its first Extend.
func TestLease_RestoredHandle(t *testing.T) {
	c := newCache(t, cache.Config{})
	ctx := ctxT(t)
	h, err := cache.Acquire(ctx, c, "lease.restored", cache.LockOptions{TTL: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	r, err := cache.RestoreLock(ctx, c, "lease.restored", h.Token(), cache.LockOptions{TTL: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if !r.ValidUntil().IsZero() {
		t.Fatalf("restored handle's ValidUntil %v; want zero", r.ValidUntil())
	}
	if err := r.Extend(ctx, 0); err != nil {
		t.Fatal(err)
	}
	if r.ValidUntil().IsZero() {
		t.Fatal("Extend did not set the restored handle's lease")
	}
	if err := r.Release(ctx); err != nil {
		t.Fatal(err)
	}
	var _ driver.Atomic = (*hung)(nil)
}

// A lock key that holds something other than a lock is an error, not contention that
// lasts forever; a lock in another library's format (an owner label) is contention.
func TestLock_NotALock(t *testing.T) {
	for _, name := range []string{"memory", "lru"} {
		t.Run(name, func(t *testing.T) {
			c := newCache(t, cache.Config{Default: name})
			ctx := ctxT(t)
			if err := c.Set(ctx, "lock.counter", 42, 0); err != nil {
				t.Fatal(err)
			}
			out, err := cache.Lock(ctx, c, "lock.counter", time.Second, func(context.Context) (int, error) { return 0, nil })
			if out.Acquired || !errors.Is(err, cache.ErrNotALock) {
				t.Fatalf("Lock over an int: acquired %v, err %v; want ErrNotALock", out.Acquired, err)
			}
			var n int
			if found, err := c.Get(ctx, "lock.counter", &n); err != nil || !found || n != 42 {
				t.Fatalf("the value was touched: %v %v %v", n, found, err)
			}
			// An owner label, as other libraries store a lock: plain contention.
			if err := c.Set(ctx, "lock.other", "pid.4242", time.Second); err != nil {
				t.Fatal(err)
			}
			out, err = cache.Lock(ctx, c, "lock.other", time.Second, func(context.Context) (int, error) { return 0, nil })
			if out.Acquired || err != nil {
				t.Fatalf("Lock over another library's lock: acquired %v, err %v; want contention", out.Acquired, err)
			}
			_, err = cache.Acquire(ctx, c, "lock.counter", cache.LockOptions{TTL: time.Second, Wait: 50 * time.Millisecond})
			if !errors.Is(err, cache.ErrNotALock) {
				t.Fatalf("Acquire with Wait over an int: %v; want ErrNotALock at once", err)
			}
		})
	}
}

// A lost lock's error is one line that names the key and the driver once, says "lock
// lost" once and "cache:" once, whether or not fn returns its ctx's cause.
func TestLock_LostErrorReadsOnce(t *testing.T) {
	c := newCache(t, cache.Config{})
	ctx := ctxT(t)
	for _, returnCause := range []bool{true, false} {
		_, err := cache.Lock(ctx, c, "lock.once-told", 20*time.Millisecond, func(fctx context.Context) (int, error) {
			<-fctx.Done()
			if returnCause {
				return 0, context.Cause(fctx)
			}
			return 0, nil
		})
		if !errors.Is(err, cache.ErrLockLost) {
			t.Fatalf("err %v; want ErrLockLost", err)
		}
		msg := err.Error()
		for _, want := range []string{"cache:", `"lock.once-told"`, `"memory"`, "lock lost"} {
			if n := strings.Count(msg, want); n != 1 {
				t.Errorf("returnCause %v: %q appears %d times in %q", returnCause, want, n, msg)
			}
		}
		if strings.Contains(msg, "\n") {
			t.Errorf("returnCause %v: the message has several lines: %q", returnCause, msg)
		}
		var ce *cache.Error
		if !errors.As(err, &ce) || ce.Op != "Lock" || ce.Key != "lock.once-told" || ce.Driver != "memory" {
			t.Errorf("errors.As(*cache.Error) = %+v", ce)
		}
	}
}
