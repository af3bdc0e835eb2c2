package cache_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/cachekit/cache"
)

// TestReentrant: Remember, SWR, Once and Lock with Wait called from inside their own fn on the
// same key and cache return ErrReentrant at once instead of waiting for themselves. A
// nested call on another key, or on the same key of another cache, runs. The limit is a
// hang detector.
func TestReentrant(t *testing.T) {
	c := newCache(t, cache.Config{})
	other := newCache(t, cache.Config{})
	ctx := ctxT(t)
	cases := map[string]func() error{
		"Remember": func() error {
			_, err := cache.Remember(ctx, c, "r", time.Minute, func(ctx context.Context) (int, error) {
				if v, err := cache.Remember(ctx, c, "r2", time.Minute, func(context.Context) (int, error) { return 2, nil }); err != nil || v != 2 {
					return 0, fmt.Errorf("another key: %d, %w", v, err)
				}
				if v, err := cache.Remember(ctx, other, "r", time.Minute, func(context.Context) (int, error) { return 3, nil }); err != nil || v != 3 {
					return 0, fmt.Errorf("another cache: %d, %w", v, err)
				}
				return cache.Remember(ctx, c, "r", time.Minute, func(context.Context) (int, error) { return 1, nil })
			})
			return err
		},
		"Remember, Distributed, from a goroutine of fn": func() error {
			o := cache.RememberOptions{TTL: time.Minute, Distributed: true}
			_, err := cache.RememberWith(ctx, c, "rd", o, func(ctx context.Context) (int, error) {
				done := make(chan error, 1)
				go func() {
					_, err := cache.RememberWith(ctx, c, "rd", o, func(context.Context) (int, error) { return 1, nil })
					done <- err
				}()
				return 0, <-done
			})
			return err
		},
		"SWR": func() error {
			o := cache.SWROptions{Fresh: time.Minute, Stale: time.Hour}
			_, err := cache.SWR(ctx, c, "s", o, func(ctx context.Context) (int, error) {
				if v, err := cache.SWR(ctx, c, "s2", o, func(context.Context) (int, error) { return 2, nil }); err != nil || v != 2 {
					return 0, fmt.Errorf("another key: %d, %w", v, err)
				}
				if v, err := cache.SWR(ctx, other, "s", o, func(context.Context) (int, error) { return 3, nil }); err != nil || v != 3 {
					return 0, fmt.Errorf("another cache: %d, %w", v, err)
				}
				return cache.SWR(ctx, c, "s", o, func(context.Context) (int, error) { return 1, nil })
			})
			return err
		},
		"SWR, from a background refresh": func() error {
			o := cache.SWROptions{Fresh: time.Minute, Stale: time.Hour}
			if err := c.Set(ctx, "sr", 1, time.Hour); err != nil { // stale: no freshness mark
				return err
			}
			nested := make(chan error, 1)
			o.OnRefreshError = func(_ string, err error) { nested <- err }
			if _, err := cache.SWR(ctx, c, "sr", o, func(ctx context.Context) (int, error) {
				if err := c.Remove(ctx, "sr"); err != nil { // the nested call misses
					return 0, err
				}
				return cache.SWR(ctx, c, "sr", o, func(context.Context) (int, error) { return 2, nil })
			}); err != nil {
				return fmt.Errorf("the stale read: %w", err)
			}
			return <-nested
		},
		"Once": func() error {
			_, err := cache.Once(ctx, c, "o", time.Minute, func(ctx context.Context) (int, error) {
				if out, err := cache.Once(ctx, c, "o2", time.Minute, func(context.Context) (int, error) { return 2, nil }); err != nil || out.Value != 2 {
					return 0, fmt.Errorf("another key: %+v, %w", out, err)
				}
				out, err := cache.Once(ctx, c, "o", time.Minute, func(context.Context) (int, error) { return 1, nil })
				return out.Value, err
			})
			return err
		},
		"Lock with Wait": func() error {
			_, err := cache.Lock(ctx, c, "l", time.Minute, func(ctx context.Context) (int, error) {
				if out, err := cache.Lock(ctx, c, "l", time.Minute, func(context.Context) (int, error) { return 1, nil }); out.Acquired || err != nil {
					return 0, fmt.Errorf("a nested Lock without Wait = %+v, %w; want plain contention", out, err)
				}
				out, err := cache.LockWith(ctx, c, "l", cache.LockOptions{TTL: time.Minute, Wait: time.Hour}, func(context.Context) (int, error) { return 1, nil })
				if out.Acquired || !errors.Is(err, cache.ErrNotAcquired) {
					return 0, fmt.Errorf("a nested Lock with Wait = %+v, %w; want ErrNotAcquired too", out, err)
				}
				return 0, err
			})
			return err
		},
	}
	for name, call := range cases {
		t.Run(name, func(t *testing.T) {
			done := make(chan error, 1)
			go func() { done <- call() }()
			select {
			case err := <-done:
				if !errors.Is(err, cache.ErrReentrant) {
					t.Fatalf("nested call on the same key = %v; want ErrReentrant", err)
				}
			case <-time.After(hangAfter):
				t.Fatalf("a nested call on the same key has not returned after %v: it waits for itself (hang detector)", hangAfter)
			}
		})
	}
	// After fn returned, a goroutine it left behind with its ctx is no nested call.
	var late context.Context
	if _, err := cache.Remember(ctx, c, "after", time.Millisecond, func(ctx context.Context) (int, error) {
		late = ctx
		return 1, nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := cache.Remember(late, c, "after-2", time.Minute, func(context.Context) (int, error) { return 1, nil }); err != nil {
		t.Fatal(err)
	}
	_ = c.Remove(ctx, "after")
	if _, err := cache.Remember(late, c, "after", time.Minute, func(context.Context) (int, error) { return 1, nil }); err != nil {
		t.Fatalf("Remember on the ctx of a fn that has returned = %v; want it to run", err)
	}
}
