package cache_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cachekit/cache"
	"github.com/cachekit/cache/driver"
	"github.com/cachekit/cache/drivers/memorycache"
)

func TestRememberNegativeTTL(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, ctx := newCache(t, cache.Config{}), ctxT(t)
		var calls int
		o := cache.RememberOptions{TTL: time.Minute, NegativeTTL: 80 * time.Millisecond}
		load := func(context.Context) (string, error) { calls++; return "", cache.ErrNotFound }
		for range 3 {
			if _, err := cache.RememberWith(ctx, c, "user.404", o, load); !errors.Is(err, cache.ErrNotFound) {
				t.Fatalf("RememberWith = %v; want ErrNotFound", err)
			}
		}
		if calls != 1 {
			t.Fatalf("a known miss loaded %d times; want 1", calls)
		}
		time.Sleep(100 * time.Millisecond)
		if v, err := cache.RememberWith(ctx, c, "user.404", o, func(context.Context) (string, error) { return "found", nil }); v != "found" || err != nil {
			t.Fatalf("after NegativeTTL RememberWith = %q, %v", v, err)
		}
		// Without NegativeTTL nothing is remembered.
		calls = 0
		for range 2 {
			_, _ = cache.Remember(ctx, c, "user.405", time.Minute, load)
		}
		if calls != 2 {
			t.Fatalf("without NegativeTTL a miss was cached (%d loads)", calls)
		}
	})
}

// TestRememberDistributedNegative: with Distributed and NegativeTTL, a caller that waited
// for another process's load, which found nothing, gets ErrNotFound from the negative
// mark instead of loading itself after WaitTimeout. Two managers over one memory driver
// stand for two processes (each has its own in-process single-flight).
func TestRememberDistributedNegative(t *testing.T) {
	d, err := memorycache.New(memorycache.Options{})
	if err != nil {
		t.Fatal(err)
	}
	open := func() *cache.Cache {
		c, err := cache.New(cache.Config{Drivers: map[string]driver.Driver{"m": d}})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	a, b := open(), open()
	defer a.Close()
	defer b.Close()
	ctx := ctxT(t)
	o := cache.RememberOptions{TTL: time.Minute, NegativeTTL: time.Minute, Distributed: true, WaitTimeout: hangAfter}
	started, release := make(chan struct{}), make(chan struct{})
	aErr := make(chan error, 1)
	go func() {
		_, err := cache.RememberWith(ctx, a, "user.42", o, func(context.Context) (string, error) {
			close(started)
			<-release
			return "", cache.ErrNotFound
		})
		aErr <- err
	}()
	<-started
	var bLoads atomic.Int32
	bErr := make(chan error, 1)
	go func() {
		_, err := cache.RememberWith(ctx, b, "user.42", o, func(context.Context) (string, error) {
			bLoads.Add(1)
			return "", cache.ErrNotFound
		})
		bErr <- err
	}()
	time.Sleep(50 * time.Millisecond) // b is waiting on a's lock
	close(release)
	if err := <-aErr; !errors.Is(err, cache.ErrNotFound) {
		t.Fatalf("the loading process: %v; want ErrNotFound", err)
	}
	start := time.Now()
	err = <-bErr
	if !errors.Is(err, cache.ErrNotFound) || bLoads.Load() != 0 {
		t.Fatalf("the waiting process: err %v, its loader ran %d times (after %v); want ErrNotFound from the negative mark, 0 loads",
			err, bLoads.Load(), time.Since(start).Round(time.Millisecond))
	}
}
