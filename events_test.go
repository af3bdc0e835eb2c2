package cache_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cachekit/cache"
)

func TestEvents(t *testing.T) {
	c, ctx := newCache(t, cache.Config{Prefix: "app"}), ctxT(t)
	var mu sync.Mutex
	got := map[string]int{}
	sub := c.Subscribe(0, func(e cache.Event) {
		mu.Lock()
		got[e.Kind.String()+" "+e.Op+" "+e.Driver+" "+e.Key]++
		mu.Unlock()
	})
	_ = c.Set(ctx, "k", 1, time.Minute)
	var n int
	_, _ = c.Get(ctx, "k", &n)
	_, _ = c.Get(ctx, "missing", &n)
	_ = c.Remove(ctx, "k")
	lru, _ := c.Driver("lru")
	_, _ = lru.Get(ctx, "x", &n)
	_, _ = cache.Lock(ctx, c, "lock.a", time.Minute, func(ctx context.Context) (int, error) {
		_, _ = cache.Lock(ctx, c, "lock.a", time.Minute, func(context.Context) (int, error) { return 0, nil })
		return 0, nil
	})
	_ = c.Set(ctx, "bad", 1, -time.Second)
	sub.Stop()
	want := map[string]int{
		"set Set memory k": 1, "hit Get memory k": 1, "miss Get memory missing": 1,
		"removed Remove memory k": 1, "miss Get lru x": 1,
		"lock.acquired Lock memory lock.a": 1, "lock.contended Lock memory lock.a": 1,
		"lock.released Release memory lock.a": 1,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("event %q seen %d times; want %d (all: %v)", k, got[k], v, got)
		}
	}
}

// A slow handler never slows a cache call by more than a channel send; a panicking one
// breaks nothing.
func TestEventsSlowAndPanickingHandlers(t *testing.T) {
	c, ctx := newCache(t, cache.Config{}), ctxT(t)
	release := make(chan struct{})
	slow := c.Subscribe(8, func(cache.Event) { <-release })
	var panics atomic.Int64
	bad := c.Subscribe(0, func(cache.Event) { panics.Add(1); panic("handler bug") })
	_ = c.Set(ctx, "k", 1, time.Minute)
	start := time.Now()
	for range 10_000 {
		var n int
		if _, err := c.Get(ctx, "k", &n); err != nil {
			t.Fatal(err)
		}
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Fatalf("10000 Gets took %v with a blocked handler", el)
	}
	if slow.Dropped() == 0 {
		t.Fatal("a full buffer dropped nothing")
	}
	close(release)
	slow.Stop()
	bad.Stop()
	if panics.Load() == 0 {
		t.Fatal("the panicking handler never ran")
	}
	var n int
	if found, err := c.Get(ctx, "k", &n); !found || err != nil {
		t.Fatal("the cache broke after handler panics", found, err)
	}
}

// A subscription gets only the kinds it asked for; one that asked for none gets them all.
func TestSubscribeKinds(t *testing.T) {
	c, ctx := newCache(t, cache.Config{}), ctxT(t)
	var mu sync.Mutex
	var some, all []string
	release := make(chan struct{})
	picky := c.Subscribe(1, func(e cache.Event) {
		<-release // a blocked handler: anything sent to it beyond one event is dropped
		mu.Lock()
		some = append(some, e.Kind.String()+" "+e.Op)
		mu.Unlock()
	}, cache.EventError, cache.EventLockAcquired)
	everything := c.Subscribe(0, func(e cache.Event) {
		mu.Lock()
		all = append(all, e.Kind.String())
		mu.Unlock()
	})
	_ = c.Set(ctx, "k", 1, time.Minute)
	for range 100 {
		_, _, _ = cache.GetAs[int](ctx, c, "k")
		_, _ = c.Has(ctx, "missing")
	}
	if picky.Dropped() != 0 {
		t.Fatalf("hits and misses were sent to a subscription for errors and locks: %d dropped", picky.Dropped())
	}
	_, _ = c.Get(ctx, "", new(int)) // an error
	close(release)
	picky.Stop()
	everything.Stop()
	if want := []string{"error Get"}; !slices.Equal(some, want) {
		t.Fatalf("the picky subscription saw %q; want %q", some, want)
	}
	if len(all) != 1+200+1 {
		t.Fatalf("the subscription to every kind saw %d events; want 202", len(all))
	}

	// Event.Time comes from a clock read once a millisecond while events flow: never
	// after the call, and not long before it.
	var times []time.Time
	timed := c.Subscribe(0, func(e cache.Event) { times = append(times, e.Time) }, cache.EventHit)
	t0 := time.Now()
	for range 2000 {
		_, _, _ = cache.GetAs[int](ctx, c, "k")
	}
	t1 := time.Now()
	timed.Stop()
	if len(times) != 2000 {
		t.Fatalf("%d hit events; want 2000", len(times))
	}
	for _, at := range times {
		if at.After(t1) || at.Before(t0.Add(-time.Second)) {
			t.Fatalf("event time %v outside [%v - 1s, %v]", at, t0, t1)
		}
	}

	// Unknown kinds select nothing; stopping the last subscription turns events off.
	none := c.Subscribe(0, func(cache.Event) { t.Error("an event for a subscription to no known kind") }, cache.EventKind(200))
	_, _ = c.Get(ctx, "", new(int))
	none.Stop()
}

func TestMetrics(t *testing.T) {
	c, ctx := newCache(t, cache.Config{Metrics: true}), ctxT(t)
	_ = c.Set(ctx, "k", 1, time.Minute)
	var n int
	for range 300 {
		_, _ = c.Get(ctx, "k", &n)
	}
	for range 100 {
		_, _ = c.Get(ctx, "missing", &n)
	}
	_, _ = c.Get(ctx, "", &n) // an error
	_, _ = cache.Lock(ctx, c, "lock", time.Minute, func(context.Context) (int, error) { return 0, nil })
	m := c.Metrics()
	if m.Hits != 300 || m.Misses != 100 || m.Sets != 1 || m.Errors != 1 || m.LockAcquired != 1 || m.LockReleased != 1 {
		t.Fatalf("counters = %+v", m.Counters)
	}
	if m.HitRate != 0.75 {
		t.Fatalf("HitRate = %v; want 0.75", m.HitRate)
	}
	get := m.Drivers["memory"].Ops["Get"]
	if get.Samples == 0 || get.P50 <= 0 || get.P99 < get.P50 {
		t.Fatalf("Get latency = %+v", get)
	}
	t.Logf("Get latency over %d samples: p50 %v p95 %v p99 %v", get.Samples, get.P50, get.P95, get.P99)
	c.ResetMetrics()
	if m := c.Metrics(); m.Hits != 0 || len(m.Drivers["memory"].Ops) != 0 {
		t.Fatalf("after ResetMetrics: %+v", m)
	}
	if m := newCache(t, cache.Config{}).Metrics(); m.Hits != 0 || m.Drivers != nil {
		t.Fatal("metrics without Config.Metrics are not empty")
	}
}

func TestSubscribeAfterClose(t *testing.T) {
	c := newCache(t, cache.Config{})
	_ = c.Close()
	s := c.Subscribe(0, func(cache.Event) {})
	s.Stop() // returns at once
	if !errors.Is(c.Set(context.Background(), "k", 1, time.Minute), cache.ErrClosed) {
		t.Fatal("Set after Close")
	}
}

// BenchmarkGetObserved is a memory GetAs hit with nobody observing, with a subscriber
// to errors and lock events only, with metrics, and with a subscriber to every kind:
// the cost of events. bench/events_bench_test.go has the same through Get.
func BenchmarkGetObserved(b *testing.B) {
	for _, tc := range []struct {
		name  string
		cfg   cache.Config
		sub   bool
		kinds []cache.EventKind
	}{
		{"none", cache.Config{}, false, nil},
		{"errors", cache.Config{}, true, []cache.EventKind{cache.EventError, cache.EventLockLost}},
		{"metrics", cache.Config{Metrics: true}, false, nil},
		{"subscriber", cache.Config{}, true, nil},
	} {
		for _, par := range []bool{false, true} {
			name := tc.name
			if par {
				name += "/parallel"
			}
			b.Run(name, func(b *testing.B) {
				c, ctx := newCache(b, tc.cfg), context.Background()
				if tc.sub {
					s := c.Subscribe(1<<16, func(cache.Event) {}, tc.kinds...)
					defer s.Stop()
				}
				_ = c.Set(ctx, "k", "v", time.Minute)
				b.ReportAllocs()
				if !par {
					for b.Loop() {
						if _, found, _ := cache.GetAs[string](ctx, c, "k"); !found {
							b.Fatal("miss")
						}
					}
					return
				}
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if _, found, _ := cache.GetAs[string](ctx, c, "k"); !found {
							b.Fatal("miss")
						}
					}
				})
			})
		}
	}
}
