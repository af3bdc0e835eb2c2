package cache_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cachekit/cache"
	"github.com/cachekit/cache/driver"
)

// failOpenCache is a cache over a flaky store that is down, with FailOpen as given, and
// a hook counting error events.
func failOpenCache(t *testing.T, failOpen bool) (*cache.Cache, *flaky, *atomic.Int64) {
	t.Helper()
	f := newFlaky(t)
	var errs atomic.Int64
	c := newCache(t, cache.Config{
		Drivers:  map[string]cache.Driver{"store": f},
		Prefix:   "app",
		FailOpen: failOpen,
		Hooks:    []cache.Hook{{Kinds: []cache.EventKind{cache.EventError}, Observe: func(cache.Event) { errs.Add(1) }}},
	})
	f.down.Store(true)
	return c, f, &errs
}

func TestFailOpenReadsGoOnWithoutTheStore(t *testing.T) {
	ctx := ctxT(t)
	c, f, errs := failOpenCache(t, true)

	var s string
	if found, err := c.Get(ctx, "k", &s); found || err != nil {
		t.Fatalf("Get with the store down = %v, %v; want a miss", found, err)
	}
	if _, found, err := cache.GetAs[string](ctx, c, "k"); found || err != nil {
		t.Fatalf("GetAs with the store down = %v, %v; want a miss", found, err)
	}
	v, err := cache.Remember(ctx, c, "k", time.Minute, func(context.Context) (string, error) { return "loaded", nil })
	if err != nil || v != "loaded" {
		t.Fatalf("Remember with the store down = %q, %v; want the loader's value", v, err)
	}
	v, err = cache.SWR(ctx, c, "s", cache.SWROptions{Fresh: time.Second, Stale: time.Minute}, func(context.Context) (string, error) { return "fresh", nil })
	if err != nil || v != "fresh" {
		t.Fatalf("SWR with the store down = %q, %v; want the loader's value", v, err)
	}
	if errs.Load() < 4 {
		t.Errorf("%d error events, want every failed read and store reported", errs.Load())
	}

	// Once the store is back, the value Remember loads is stored again.
	f.down.Store(false)
	if _, err := cache.Remember(ctx, c, "k", time.Minute, func(context.Context) (string, error) { return "again", nil }); err != nil {
		t.Fatal(err)
	}
	if found, err := c.Get(ctx, "k", &s); !found || err != nil || s != "again" {
		t.Fatalf("after recovery Get = %q, %v, %v", s, found, err)
	}
}

// With the store down nothing is stored, so a caller that came after the load would load
// again: in a synctest bubble the load's 50 ms pass only once all 20 callers wait for it.
func TestFailOpenLoadsOncePerKey(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := ctxT(t)
		c, _, _ := failOpenCache(t, true)
		var runs atomic.Int64
		var wg sync.WaitGroup
		for range 20 {
			wg.Go(func() {
				v, err := cache.Remember(ctx, c, "k", time.Minute, func(context.Context) (string, error) {
					runs.Add(1)
					time.Sleep(50 * time.Millisecond)
					return "v", nil
				})
				if err != nil || v != "v" {
					t.Errorf("Remember = %q, %v", v, err)
				}
			})
		}
		wg.Wait()
		if n := runs.Load(); n != 1 {
			t.Fatalf("the loader ran %d times for 20 concurrent callers, want 1", n)
		}
	})
}

func TestFailOpenPerCall(t *testing.T) {
	ctx := ctxT(t)
	closed, _, _ := failOpenCache(t, false)
	load := func(context.Context) (string, error) { return "v", nil }
	if _, err := cache.Remember(ctx, closed, "k", time.Minute, load); !errors.Is(err, errDown) {
		t.Fatalf("Remember without FailOpen = %v, want the store's error", err)
	}
	if v, err := cache.Remember(cache.WithFailOpen(ctx, true), closed, "k", time.Minute, load); err != nil || v != "v" {
		t.Fatalf("Remember with WithFailOpen(true) = %q, %v", v, err)
	}
	open, _, _ := failOpenCache(t, true)
	var s string
	if _, err := open.Get(cache.WithFailOpen(ctx, false), "k", &s); !errors.Is(err, errDown) {
		t.Fatalf("Get with WithFailOpen(false) on a FailOpen cache = %v, want the store's error", err)
	}
}

// TestFailOpenNeverForLocks: a lock, Once and writes fail closed whatever FailOpen says.
func TestFailOpenNeverForLocks(t *testing.T) {
	ctx := ctxT(t)
	c, _, _ := failOpenCache(t, true)
	ran := false
	out, err := cache.Lock(ctx, c, "job", time.Second, func(context.Context) (int, error) { ran = true; return 1, nil })
	if err == nil || ran || out.Acquired {
		t.Fatalf("Lock with the store down = %+v, %v (fn ran: %v); want an error and fn not run", out, err, ran)
	}
	if errors.Is(err, cache.ErrNotAcquired) {
		t.Fatalf("Lock with the store down reads as contention: %v", err)
	}
	ran = false
	if _, err := cache.Once(ctx, c, "hook", time.Minute, func(context.Context) (int, error) { ran = true; return 1, nil }); err == nil || ran {
		t.Fatalf("Once with the store down = %v (fn ran: %v); want an error and fn not run", err, ran)
	}
	if err := c.Set(ctx, "k", "v", 0); !errors.Is(err, errDown) {
		t.Fatalf("Set with the store down = %v, want the store's error", err)
	}
}

// foreignStore holds data the cache cannot read under every key.
type foreignStore struct{ *flaky }

func (f foreignStore) Get(context.Context, string) (any, bool, error) {
	return nil, false, fmt.Errorf("a hash: %w", driver.ErrForeign)
}

func (f foreignStore) GetJoined(ctx context.Context, scope, key string) (any, bool, error) {
	return f.Get(ctx, scope+"."+key)
}

// TestFailOpenNeverOverwritesForeignData: data the cache cannot read is not a store
// that is down: Remember returns the error and never runs the loader over it.
func TestFailOpenNeverOverwritesForeignData(t *testing.T) {
	ctx := ctxT(t)
	c := newCache(t, cache.Config{Drivers: map[string]cache.Driver{"store": foreignStore{newFlaky(t)}}, FailOpen: true})
	ran := false
	if _, err := cache.Remember(ctx, c, "k", time.Minute, func(context.Context) (string, error) { ran = true; return "v", nil }); !errors.Is(err, driver.ErrForeign) || ran {
		t.Fatalf("Remember over foreign data with FailOpen = %v (loader ran: %v); want ErrForeign and no load", err, ran)
	}
}

// countedStore is a flaky store that counts its reads.
type countedStore struct {
	*flaky
	reads atomic.Int64
}

func (s *countedStore) Get(ctx context.Context, key string) (any, bool, error) {
	s.reads.Add(1)
	return s.flaky.Get(ctx, key)
}

func (s *countedStore) GetJoined(ctx context.Context, scope, key string) (any, bool, error) {
	return s.Get(ctx, scope+"."+key)
}

// TestFailOpenOneReadBeforeTheLoader: with the store down, a fail-open Remember (with
// and without a negative cache) and SWR make one read of the store before their loader,
// not a second one in the load's flight: against a store that is out of reach, each
// read can cost a timeout.
func TestFailOpenOneReadBeforeTheLoader(t *testing.T) {
	ctx := ctxT(t)
	s := &countedStore{flaky: newFlaky(t)}
	c := newCache(t, cache.Config{Drivers: map[string]cache.Driver{"store": s}, Prefix: "app", FailOpen: true})
	s.down.Store(true)
	calls := map[string]func(load func(context.Context) (string, error)) (string, error){
		"Remember": func(load func(context.Context) (string, error)) (string, error) {
			return cache.Remember(ctx, c, "r", time.Minute, load)
		},
		"Remember with NegativeTTL": func(load func(context.Context) (string, error)) (string, error) {
			return cache.RememberWith(ctx, c, "n", cache.RememberOptions{TTL: time.Minute, NegativeTTL: time.Minute}, load)
		},
		"SWR": func(load func(context.Context) (string, error)) (string, error) {
			return cache.SWR(ctx, c, "s", cache.SWROptions{Fresh: time.Second, Stale: time.Minute}, load)
		},
	}
	for name, call := range calls {
		before := s.reads.Load()
		var atLoad int64
		v, err := call(func(context.Context) (string, error) { atLoad = s.reads.Load() - before; return "loaded", nil })
		if err != nil || v != "loaded" {
			t.Fatalf("%s with the store down = %q, %v; want the loader's value", name, v, err)
		}
		if atLoad != 1 {
			t.Errorf("%s with the store down read the store %d times before its loader; want 1", name, atLoad)
		}
	}
}
