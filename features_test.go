package cache_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cachekit/cache"
	"github.com/cachekit/cache/driver"
	"github.com/cachekit/cache/drivers/memorycache"
)

// In a synctest bubble (here and below) time moves only when every goroutine waits: a
// value is fresh or stale exactly when its TTLs say, however busy the machine is.
func TestSWR(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, ctx := newCache(t, cache.Config{}), ctxT(t)
		var calls atomic.Int64
		refreshed := make(chan struct{}, 10)
		load := func(context.Context) (int64, error) {
			n := calls.Add(1)
			if n > 1 {
				refreshed <- struct{}{}
			}
			return n, nil
		}
		o := cache.SWROptions{Fresh: 100 * time.Millisecond, Stale: time.Minute}
		// Cold: one load for 50 concurrent callers.
		var wg sync.WaitGroup
		for range 50 {
			wg.Go(func() {
				if v, err := cache.SWR(ctx, c, "k", o, load); v != 1 || err != nil {
					t.Errorf("cold SWR = %d, %v; want 1", v, err)
				}
			})
		}
		wg.Wait()
		if calls.Load() != 1 {
			t.Fatalf("a cold key loaded %d times; want 1", calls.Load())
		}
		// Fresh: no load.
		if v, _ := cache.SWR(ctx, c, "k", o, load); v != 1 || calls.Load() != 1 {
			t.Fatalf("fresh SWR = %d after %d loads", v, calls.Load())
		}
		time.Sleep(150 * time.Millisecond)
		// Stale: the old value at once, one refresh in the background.
		if v, err := cache.SWR(ctx, c, "k", o, load); v != 1 || err != nil {
			t.Fatalf("stale SWR = %d, %v; want the stale 1 at once", v, err)
		}
		for range 9 { // the refresh may have landed meanwhile
			if v, err := cache.SWR(ctx, c, "k", o, load); (v != 1 && v != 2) || err != nil {
				t.Fatalf("stale SWR = %d, %v; want 1 or the refreshed 2", v, err)
			}
		}
		select {
		case <-refreshed:
		case <-time.After(5 * time.Second):
			t.Fatal("no background refresh")
		}
		time.Sleep(20 * time.Millisecond)
		if n := calls.Load(); n != 2 {
			t.Fatalf("%d loads after 10 stale reads; want 2 (one refresh)", n)
		}
		if v, _ := cache.SWR(ctx, c, "k", o, load); v != 2 {
			t.Fatalf("after the refresh SWR = %d; want 2", v)
		}
		// A failed refresh keeps the stale value and is reported.
		time.Sleep(150 * time.Millisecond)
		errLoad := errors.New("backend down")
		reported := make(chan error, 1)
		o.OnRefreshError = func(_ string, err error) { reported <- err }
		if v, _ := cache.SWR(ctx, c, "k", o, func(context.Context) (int64, error) { return 0, errLoad }); v != 2 {
			t.Fatalf("stale SWR = %d; want 2", v)
		}
		if err := <-reported; !errors.Is(err, errLoad) {
			t.Fatalf("OnRefreshError got %v", err)
		}
		if v, _ := cache.SWR(ctx, c, "k", o, load); v != 2 {
			t.Fatalf("a failed refresh lost the stale value: %d", v)
		}
		if _, err := cache.SWR(ctx, c, "k", cache.SWROptions{Fresh: time.Minute, Stale: time.Second}, load); !errors.Is(err, cache.ErrInvalidTTL) {
			t.Fatalf("Stale <= Fresh = %v; want ErrInvalidTTL", err)
		}
	})
}

// Close waits for a background refresh and cancels its context. (In a synctest bubble the
// value is stale after the sleep: the memory driver's clock runs on the bubble's time.)
func TestSWRRefreshEndsAtClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCache(t, cache.Config{})
		ctx := context.Background()
		o := cache.SWROptions{Fresh: time.Millisecond, Stale: time.Minute}
		if _, err := cache.SWR(ctx, c, "k", o, func(context.Context) (int, error) { return 1, nil }); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
		started := make(chan struct{})
		var sawCancel atomic.Bool
		_, _ = cache.SWR(ctx, c, "k", o, func(ctx context.Context) (int, error) {
			close(started)
			<-ctx.Done()
			sawCancel.Store(true)
			return 0, ctx.Err()
		})
		<-started
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
		if !sawCancel.Load() {
			t.Fatal("Close returned before the refresh ended")
		}
	})
}

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

func TestCached(t *testing.T) {
	c, ctx := newCache(t, cache.Config{}), ctxT(t)
	type query struct {
		Page  int               `json:"page"`
		Limit int               `json:"limit"`
		F     map[string]string `json:"f"`
	}
	var calls atomic.Int64
	users := cache.Cached(c, "users", time.Minute, func(_ context.Context, id int) (string, error) {
		calls.Add(1)
		return "user", nil
	})
	for range 3 {
		if v, err := users.Get(ctx, 42); v != "user" || err != nil {
			t.Fatal(v, err)
		}
	}
	if calls.Load() != 1 {
		t.Fatalf("memoized fn ran %d times; want 1", calls.Load())
	}
	if k, _ := users.Key(42); k != "users.42" {
		t.Fatalf("Key(42) = %q; want users.42", k)
	}
	if err := users.Invalidate(ctx, 42); err != nil {
		t.Fatal(err)
	}
	_, _ = users.Get(ctx, 42)
	if calls.Load() != 2 {
		t.Fatal("Invalidate did not forget the result")
	}
	search := cache.Cached(c, "search", time.Minute, func(_ context.Context, q query) (int, error) { return q.Page, nil })
	k1, _ := search.Key(query{Page: 1, Limit: 3, F: map[string]string{"b": "2", "a": "1"}})
	k2, _ := search.Key(query{Page: 1, Limit: 3, F: map[string]string{"a": "1", "b": "2"}})
	if k1 != k2 {
		t.Fatalf("equal arguments got different keys: %q, %q", k1, k2)
	}
	lru := cache.CachedWith(c, "on-lru", cache.RememberOptions{TTL: time.Minute, Driver: "lru"}, func(_ context.Context, s string) (string, error) { return s, nil })
	_, _ = lru.Get(ctx, "x")
	onLRU, _ := c.Driver("lru")
	if found, _ := onLRU.Has(ctx, "on-lru.x"); !found {
		t.Fatal("CachedWith Driver did not store on that driver")
	}
	if err := lru.Invalidate(ctx, "x"); err != nil {
		t.Fatal(err)
	}
	if found, _ := onLRU.Has(ctx, "on-lru.x"); found {
		t.Fatal("Invalidate ignored the memo's driver")
	}
}

func TestList(t *testing.T) {
	for _, name := range []string{"memory", "lru"} {
		t.Run(name, func(t *testing.T) {
			c, ctx := newCache(t, cache.Config{Default: name}), ctxT(t)
			l := cache.NewList[string](c, "events", time.Minute)
			if n, err := l.Push(ctx, "b", "c"); n != 2 || err != nil {
				t.Fatal(n, err)
			}
			if n, _ := l.Unshift(ctx, "a"); n != 3 {
				t.Fatal(n)
			}
			all, _ := l.Slice(ctx, 0, -1)
			if !slices.Equal(all, []string{"a", "b", "c"}) {
				t.Fatalf("All = %q", all)
			}
			if s, _ := l.Slice(ctx, -2, -1); !slices.Equal(s, []string{"b", "c"}) {
				t.Fatalf("Slice(-2,-1) = %q", s)
			}
			if v, ok, _ := l.Pop(ctx); v != "c" || !ok {
				t.Fatal("Pop", v, ok)
			}
			if v, ok, _ := l.Shift(ctx); v != "a" || !ok {
				t.Fatal("Shift", v, ok)
			}
			_, _ = l.Push(ctx, "x", "y", "z")
			if err := l.Trim(ctx, -2, -1); err != nil {
				t.Fatal(err)
			}
			if all, _ := l.Slice(ctx, 0, -1); !slices.Equal(all, []string{"y", "z"}) {
				t.Fatalf("after Trim(-2,-1) = %q; want the last 2", all)
			}
			_, _, _ = l.Pop(ctx)
			_, _, _ = l.Pop(ctx)
			if found, _ := c.Has(ctx, "events"); found {
				t.Fatal("an empty list was not deleted")
			}
			if _, ok, err := l.Pop(ctx); ok || err != nil {
				t.Fatal("Pop of an empty list", ok, err)
			}
			// Concurrent pushes lose nothing.
			var wg sync.WaitGroup
			for range 20 {
				wg.Go(func() {
					for range 25 {
						if _, err := l.Push(ctx, "e"); err != nil {
							t.Error(err)
						}
					}
				})
			}
			wg.Wait()
			if n, _ := l.Len(ctx); n != 500 {
				t.Fatalf("Len after 500 concurrent pushes = %d", n)
			}
		})
	}
}

// A tag index outlives the driver's default TTL: it must outlive the entries it lists.
func TestTagIndexIgnoresDefaultTTL(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mem, _ := memorycache.New(memorycache.Options{DefaultTTL: 50 * time.Millisecond})
		c, ctx := newCache(t, cache.Config{Drivers: map[string]cache.Driver{"m": mem}}), ctxT(t)
		if err := c.Tags("t").Forever(ctx, "k", 1); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
		if err := c.InvalidateTags(ctx, "t"); err != nil {
			t.Fatal(err)
		}
		if found, _ := c.Has(ctx, "k"); found {
			t.Fatal("the tag index expired with the default TTL and Invalidate missed the entry")
		}
	})
}

// A slice the list handed out never changes under its holder.
func TestListSlicesAreCopies(t *testing.T) {
	c, ctx := newCache(t, cache.Config{}), ctxT(t)
	l := cache.NewList[string](c, "l", time.Minute)
	_, _ = l.Push(ctx, "a", "b", "c")
	all, _ := l.Slice(ctx, 0, -1)
	_, _, _ = l.Pop(ctx)
	_, _ = l.Push(ctx, "x")
	if !slices.Equal(all, []string{"a", "b", "c"}) {
		t.Fatalf("a slice from All changed to %q", all)
	}
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
