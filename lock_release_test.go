package cache_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cachekit/cache"
	"github.com/cachekit/cache/driver"
	"github.com/cachekit/cache/drivers/memorycache"
)

// slowLink wraps the memory driver as a store behind a slow network: a compare-and-delete
// reaches the store only after cadDelay (and is cut by its ctx before that), and, with
// lostReply set, a create-if-absent is applied but its reply is lost: the call waits for
// its ctx to end and returns its error.
type slowLink struct {
	*memorycache.Driver
	cadDelay  time.Duration
	lostReply atomic.Bool
}

func newSlowLink(t testing.TB, cadDelay time.Duration) *slowLink {
	d, err := memorycache.New(memorycache.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return &slowLink{Driver: d, cadDelay: cadDelay}
}

func (s *slowLink) CompareAndDelete(ctx context.Context, key string, old any) (bool, error) {
	select {
	case <-time.After(s.cadDelay):
	case <-ctx.Done():
		return false, fmt.Errorf("compare-and-delete: %w", ctx.Err())
	}
	return s.Driver.CompareAndDelete(ctx, key, old)
}

func (s *slowLink) SetIf(ctx context.Context, e driver.Entry, c driver.Condition) (bool, error) {
	ok, err := s.Driver.SetIf(ctx, e, c)
	if err != nil || !s.lostReply.Load() {
		return ok, err
	}
	<-ctx.Done() // applied, but the reply never comes back
	return false, ctx.Err()
}

func slowCache(t *testing.T, s *slowLink) *cache.Cache {
	return newCache(t, cache.Config{Drivers: map[string]cache.Driver{"slow": s}, Default: "slow"})
}

// TestLock_ReleaseCutByDeadlineStillFrees: fn returns about 1 ms before ctx's deadline,
// and the release takes 3 ms to reach the store. The release does not inherit ctx's
// deadline: in 20 runs of 20, Lock and a handle's Release free the lock at once (the key
// is gone when they return, not held for its hour).
func TestLock_ReleaseCutByDeadlineStillFrees(t *testing.T) {
	const runs = 20
	s := newSlowLink(t, 3*time.Millisecond)
	c := slowCache(t, s)
	beforeDeadline := func(ctx context.Context) {
		dl, _ := ctx.Deadline()
		time.Sleep(time.Until(dl) - time.Millisecond)
	}
	var freed, skipped int
	for i := 0; i < runs; i++ {
		key := fmt.Sprintf("lock.cut.%d", i)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		out, err := cache.Lock(ctx, c, key, time.Hour, func(ctx context.Context) (int, error) {
			beforeDeadline(ctx)
			return 1, nil
		})
		cancel()
		if !out.Acquired && errors.Is(err, context.DeadlineExceeded) && skipped < runs {
			skipped++ // a busy machine spent the whole deadline before the acquire: again
			i--
			continue
		}
		if !out.Acquired || err != nil {
			t.Fatalf("run %d: Lock = %+v, %v; want acquired and nil", i, out, err)
		}
		if found, _ := c.Has(context.Background(), key); !found {
			freed++
		}
	}
	if freed != runs {
		t.Fatalf("Lock: %d of %d releases cut by the caller's deadline freed the lock; want all", freed, runs)
	}
	freed, skipped = 0, 0
	for i := 0; i < runs; i++ {
		key := fmt.Sprintf("handle.cut.%d", i)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		h, err := cache.Acquire(ctx, c, key, cache.LockOptions{TTL: time.Hour})
		if errors.Is(err, context.DeadlineExceeded) && skipped < runs {
			cancel()
			skipped++ // as above
			i--
			continue
		}
		if err != nil {
			cancel()
			t.Fatalf("run %d: %v", i, err)
		}
		beforeDeadline(ctx)
		rerr := h.Release(ctx)
		cancel()
		if found, _ := c.Has(context.Background(), key); !found && rerr == nil {
			freed++
		}
	}
	if freed != runs {
		t.Fatalf("Release: %d of %d releases cut by the caller's deadline freed the lock; want all", freed, runs)
	}
}

// TestLock_ReleaseTimeout: a release that gets no answer gives up after
// LockOptions.ReleaseTimeout, not after the 5 s default; a negative one is refused.
func TestLock_ReleaseTimeout(t *testing.T) {
	s := newSlowLink(t, hangAfter)
	c := slowCache(t, s)
	ctx := ctxT(t)
	start := time.Now()
	out, err := cache.LockWith(ctx, c, "lock.rt", cache.LockOptions{TTL: time.Hour, ReleaseTimeout: time.Millisecond},
		func(context.Context) (int, error) { return 1, nil })
	if err != nil || !out.Acquired {
		t.Fatalf("Lock whose release got no answer = %+v, %v; want acquired and nil", out, err)
	}
	if took := time.Since(start); took >= cache.ReleaseTimeout {
		t.Fatalf("the release waited %v; want it to give up after its own ReleaseTimeout", took)
	}
	for name, call := range map[string]func() error{
		"LockWith": func() error {
			_, err := cache.LockWith(ctx, c, "lock.neg", cache.LockOptions{TTL: time.Hour, ReleaseTimeout: -1}, func(context.Context) (int, error) { return 1, nil })
			return err
		},
		"RestoreLock": func() error {
			_, err := cache.RestoreLock(ctx, c, "lock.neg", "x#y", cache.LockOptions{ReleaseTimeout: -1})
			return err
		},
	} {
		if err := call(); !errors.Is(err, cache.ErrInvalidConfig) {
			t.Errorf("%s with a negative ReleaseTimeout = %v; want ErrInvalidConfig", name, err)
		}
	}
}

// TestLock_AttemptCutByCtxIsDeleted: the store took the lock but the reply was lost, and
// ctx ended. The acquisition fails with an error matching ErrNotAcquired and ctx's
// error, and the attempt's lock does not stay held for its hour: it is deleted. The
// same for Once's pending marker.
func TestLock_AttemptCutByCtxIsDeleted(t *testing.T) {
	s := newSlowLink(t, 0)
	c := slowCache(t, s)
	s.lostReply.Store(true)
	for _, wait := range []time.Duration{0, time.Hour} {
		key := fmt.Sprintf("lock.lost-reply.%v", wait)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		out, err := cache.LockWith(ctx, c, key, cache.LockOptions{TTL: time.Hour, Wait: wait}, func(context.Context) (int, error) {
			t.Error("fn ran without the lock")
			return 0, nil
		})
		cancel()
		if out.Acquired || !errors.Is(err, cache.ErrNotAcquired) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Wait %v: Lock whose reply was lost = %+v, %v; want ErrNotAcquired and the deadline", wait, out, err)
		}
		waitGone(t, c, key)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	_, err := cache.Once(ctx, c, "once.lost-reply", time.Hour, func(context.Context) (int, error) {
		t.Error("fn ran without the marker")
		return 0, nil
	})
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Once whose reply was lost = %v; want the deadline", err)
	}
	waitGone(t, c, "once.lost-reply")
}

// waitGone waits until key is gone; the delete runs in the background, so this polls,
// with a hang detector of hangAfter (not a latency bound).
func waitGone(t *testing.T, c *cache.Cache, key string) {
	t.Helper()
	for start := time.Now(); ; time.Sleep(time.Millisecond) {
		found, err := c.Has(context.Background(), key)
		if err == nil && !found {
			return
		}
		if time.Since(start) > hangAfter {
			t.Fatalf("%s still there %v later (found %v, err %v): the cut attempt was left held (hang detector)", key, hangAfter, found, err)
		}
	}
}

// TestLock_ReleaseAfterTheLeaseIsNoLoss: fn returned within its lease, and its release
// reached the store after the TTL, when the key had expired on time. That is no loss (no
// other holder could have run beside fn): Lock returns nil, not ErrLockLost.
func TestLock_ReleaseAfterTheLeaseIsNoLoss(t *testing.T) {
	const ttl = time.Second
	s := newSlowLink(t, ttl+100*time.Millisecond)
	c := slowCache(t, s)
	out, err := cache.Lock(ctxT(t), c, "lock.late-release", ttl, func(context.Context) (int, error) { return 1, nil })
	if !out.Acquired || err != nil {
		t.Fatalf("Lock whose release landed after the TTL = %+v, %v; want acquired and nil", out, err)
	}
}
