package pgcache_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cachekit/cache"
	"github.com/cachekit/cache/drivers/pgcache"
	"github.com/cachekit/cache/internal/testkit/pgtest"
)

// TestWaitersDeadline: a waiter whose ctx ends while it tries to take a held lock gets
// an error that matches cache.ErrNotAcquired and ctx's error, whatever step its deadline
// cut: the attempt, the read that checks the key holds a lock, the wait for a
// connection of the pool, or the wait for the release. 200 waiters with a 50 ms
// deadline on a pool of 4 connections meet every one of those steps.
//
// Lock with Wait 0 never reports a caller whose ctx ended as "held by someone else"
// with a nil error: its error matches ctx's error, or it saw the lock held (Acquired
// false, nil) before the deadline.
func TestWaitersDeadline(t *testing.T) {
	url := pgtest.URL(t)
	d := newDriver(t, pgcache.Options{Pool: sharedPool(t, url)}) // warm: most first attempts are not cut
	c, err := cache.New(cache.Config{Drivers: map[string]cache.Driver{"pg": d}, Prefix: scope("waiters")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Flush(bg); _ = c.Close() })
	h, err := cache.Acquire(bg, c, "job", cache.LockOptions{TTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = h.Release(bg) }()

	const n = 200
	type result struct {
		acquired bool
		err      error
	}
	run := func(call func(ctx context.Context) result) []result {
		res := make([]result, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				ctx, cancel := context.WithTimeout(bg, 50*time.Millisecond)
				defer cancel()
				res[i] = call(ctx)
			})
		}
		wg.Wait()
		return res
	}
	check := func(name string, res []result, wait bool) {
		t.Helper()
		matched, deadline, heldNil := 0, 0, 0
		steps := map[string]int{}
		for _, r := range res {
			if r.err != nil {
				steps[step(r.err)]++
			}
			switch {
			case r.acquired:
				t.Errorf("%s: a waiter acquired a held lock", name)
			case r.err == nil && wait:
				t.Errorf("%s: nil error from a waiter that did not acquire", name)
			case r.err == nil:
				heldNil++
			case errors.Is(r.err, cache.ErrNotAcquired) && errors.Is(r.err, context.DeadlineExceeded):
				matched++
				deadline++
			case errors.Is(r.err, cache.ErrNotAcquired) && !wait:
				matched++ // Acquire with Wait 0 saw the lock held before its deadline
			default:
				t.Errorf("%s: %v; want an error matching ErrNotAcquired and context.DeadlineExceeded", name, r.err)
			}
		}
		t.Logf("%s: %d/%d errors match ErrNotAcquired (%d of them with context.DeadlineExceeded), %d nil (held); cut in %v", name, matched, n, deadline, heldNil, steps)
	}

	check("Acquire, Wait 10s", run(func(ctx context.Context) result {
		h, err := cache.Acquire(ctx, c, "job", cache.LockOptions{TTL: time.Minute, Wait: 10 * time.Second})
		return result{h != nil, err}
	}), true)
	check("LockWith, Wait 10s", run(func(ctx context.Context) result {
		out, err := cache.LockWith(ctx, c, "job", cache.LockOptions{TTL: time.Minute, Wait: 10 * time.Second}, func(context.Context) (int, error) { return 0, nil })
		return result{out.Acquired, err}
	}), true)
	check("Acquire, Wait 0", run(func(ctx context.Context) result {
		h, err := cache.Acquire(ctx, c, "job", cache.LockOptions{TTL: time.Minute})
		return result{h != nil, err}
	}), false)
	lockRes := run(func(ctx context.Context) result {
		out, err := cache.Lock(ctx, c, "job", time.Minute, func(context.Context) (int, error) { return 0, nil })
		return result{out.Acquired, err}
	})
	cut, held := 0, 0
	for _, r := range lockRes {
		switch {
		case r.acquired:
			t.Error("Lock, Wait 0: acquired a held lock")
		case r.err == nil:
			held++
		case errors.Is(r.err, context.DeadlineExceeded):
			cut++
		default:
			t.Errorf("Lock, Wait 0: %v; want nil (held) or an error matching context.DeadlineExceeded", r.err)
		}
	}
	t.Logf("Lock, Wait 0: %d saw the lock held (nil error), %d cut by their deadline", held, cut)
}

// step names the step of an acquisition that an error came from, for the log.
func step(err error) string {
	switch msg := err.Error(); {
	case strings.Contains(msg, "pgcache: create"):
		return "the attempt"
	case strings.Contains(msg, "pgcache: get"):
		return "the holds-a-lock read"
	case strings.Contains(msg, "pgcache: "):
		return "another driver call"
	}
	return "the wait (or before the first attempt)"
}
