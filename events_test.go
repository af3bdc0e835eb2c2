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
	"github.com/cachekit/cache/drivers/lrucache"
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
	sub()
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

// A handler that blocks never blocks a cache call: the calls go on while it is stuck,
// and what its buffer cannot hold is dropped. A panicking one breaks nothing.
func TestEventsSlowAndPanickingHandlers(t *testing.T) {
	c, ctx := newCache(t, cache.Config{}), ctxT(t)
	release := make(chan struct{})
	slow := c.Subscribe(8, func(cache.Event) { <-release })
	var panics atomic.Int64
	bad := c.Subscribe(0, func(cache.Event) { panics.Add(1); panic("handler bug") })
	_ = c.Set(ctx, "k", 1, time.Minute)
	// The Gets run while the handler is stuck (release is closed only after them): a
	// call that waited for it would never return.
	start := time.Now()
	gets := make(chan error, 1)
	go func() {
		for range 10_000 {
			var n int
			if _, err := c.Get(ctx, "k", &n); err != nil {
				gets <- err
				return
			}
		}
		gets <- nil
	}()
	select {
	case err := <-gets:
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("10000 Gets with a stuck handler took %v", time.Since(start))
	case <-time.After(hangAfter): // a hang detector: the Gets take milliseconds
		t.Fatalf("10000 Gets still running %v after the start with a stuck handler: a call waits for the handler", hangAfter)
	}
	close(release)
	if slow() == 0 {
		t.Fatal("a full buffer dropped nothing")
	}
	bad()
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
	_, _ = c.Get(ctx, "", new(int)) // an error
	close(release)
	if n := picky(); n != 0 {
		t.Fatalf("hits and misses were sent to a subscription for errors and locks: %d dropped", n)
	}
	everything()
	if want := []string{"error Get"}; !slices.Equal(some, want) {
		t.Fatalf("the picky subscription saw %q; want %q", some, want)
	}
	if len(all) != 1+200+1 {
		t.Fatalf("the subscription to every kind saw %d events; want 202", len(all))
	}

	// Event.Time is read during the call: never before it started, never after it
	// returned.
	var times []time.Time
	timed := c.Subscribe(4096, func(e cache.Event) { times = append(times, e.Time) }, cache.EventHit)
	t0 := time.Now()
	for range 2000 {
		_, _, _ = cache.GetAs[int](ctx, c, "k")
	}
	t1 := time.Now()
	timed()
	if len(times) != 2000 {
		t.Fatalf("%d hit events; want 2000", len(times))
	}
	for _, at := range times {
		if at.After(t1) || at.Before(t0) {
			t.Fatalf("event time %v outside the calls, [%v, %v]", at, t0, t1)
		}
	}

	// Unknown kinds select nothing; stopping the last subscription turns events off.
	none := c.Subscribe(0, func(cache.Event) { t.Error("an event for a subscription to no known kind") }, cache.EventKind(200))
	_, _ = c.Get(ctx, "", new(int))
	none()
}

// recorder collects the events of a subscription as "kind Op key".
type recorder struct {
	mu  sync.Mutex
	got []string
	sub func() int64
}

func record(c *cache.Cache, kinds ...cache.EventKind) *recorder {
	r := &recorder{}
	r.sub = c.Subscribe(0, func(e cache.Event) {
		s := e.Kind.String() + " " + e.Op + " " + e.Key
		if e.Err != nil {
			s += " (err)"
		}
		r.mu.Lock()
		r.got = append(r.got, s)
		r.mu.Unlock()
	}, kinds...)
	return r
}

// take returns the events delivered so far and forgets them.
func (r *recorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	got := r.got
	r.got = nil
	return got
}

// expect waits until the events delivered since the last take are want, in order. It
// fails at once on an event too many, and after hangAfter (a hang detector: delivery
// takes microseconds) on one that never comes.
func (r *recorder) expect(t *testing.T, what string, want ...string) {
	t.Helper()
	deadline := time.Now().Add(hangAfter)
	for {
		r.mu.Lock()
		got := slices.Clone(r.got)
		r.mu.Unlock()
		if slices.Equal(got, want) {
			r.take()
			return
		}
		if time.Now().After(deadline) || len(got) > len(want) {
			t.Fatalf("%s: events %q; want %q", what, got, want)
		}
		time.Sleep(time.Millisecond)
	}
}

// Every feature built on the manager reports its events: SWR, Many, SetMany, Modify,
// lists, Once, InvalidateTags.
func TestEventsCoverage(t *testing.T) {
	for _, driverName := range []string{"memory", "lru"} {
		t.Run(driverName, func(t *testing.T) {
			c, ctx := newCache(t, cache.Config{Prefix: "app", Default: driverName}), ctxT(t)
			r := record(c)
			defer r.sub()

			// SWR: a cold miss loads and stores; a fresh hit; a stale hit whose refresh
			// fails reports the error as an event too.
			o := cache.SWROptions{Fresh: time.Minute, Stale: time.Hour}
			load := func(context.Context) (int, error) { return 1, nil }
			if _, err := cache.SWR(ctx, c, "s", o, load); err != nil {
				t.Fatal(err)
			}
			if _, err := cache.SWR(ctx, c, "s", o, load); err != nil {
				t.Fatal(err)
			}
			r.expect(t, "SWR", "miss SWR s", "set SWR s", "hit SWR s")
			_ = c.RemoveMarks(ctx, "s") // stale now
			failed := make(chan error, 1)
			o.OnRefreshError = func(_ string, err error) { failed <- err }
			boom := errors.New("boom")
			if _, err := cache.SWR(ctx, c, "s", o, func(context.Context) (int, error) { return 0, boom }); err != nil {
				t.Fatal(err)
			}
			if err := <-failed; !errors.Is(err, boom) {
				t.Fatalf("OnRefreshError got %v", err)
			}
			r.expect(t, "SWR failed refresh", "hit SWR s", "error SWR s (err)")
			if _, err := cache.SWR(ctx, c, "s", o, load); err != nil { // still stale: refreshes
				t.Fatal(err)
			}
			r.expect(t, "SWR refresh", "hit SWR s", "set SWR s")

			// SetMany: one set per key; Many: a hit or a miss per key.
			if err := c.SetMany(ctx, map[string]any{"a": 1}, time.Minute); err != nil {
				t.Fatal(err)
			}
			if _, err := cache.Many[int](ctx, c, "a", "b"); err != nil {
				t.Fatal(err)
			}
			r.expect(t, "SetMany, Many", "set SetMany a", "hit Many a", "miss Many b")

			// Modify: set when it writes, removed when it deletes a live key, nothing when
			// fn fails or deletes a missing key.
			inc := func(n int, _ bool) (int, error) { return n + 1, nil }
			_, _ = cache.Modify(ctx, c, "m", inc)
			_, _ = cache.Modify(ctx, c, "m", func(int, bool) (int, error) { return 0, boom })
			_, _ = cache.Modify(ctx, c, "m", func(int, bool) (int, error) { return 0, cache.DeleteKey })
			_, _ = cache.Modify(ctx, c, "m", func(int, bool) (int, error) { return 0, cache.DeleteKey })
			r.expect(t, "Modify", "set Modify m", "removed Modify m")

			// Lists: writes are set (removed when they leave the list empty), reads hit
			// or miss; Clear is a Remove.
			l := cache.NewList[string](c, "l", time.Minute)
			_, _ = l.Push(ctx, "x", "y")
			_, _ = l.Slice(ctx, 0, -1)
			_, _, _ = l.Pop(ctx)
			_, _ = l.Len(ctx)
			_, _, _ = l.Shift(ctx)
			_, _ = l.Len(ctx)
			_ = l.Clear(ctx)
			r.expect(t, "List", "set List l", "hit List l", "set List l", "hit List l", "removed List l", "miss List l", "removed Remove l")

			// Once: the runner misses then stores; a later call hits.
			run := func(context.Context) (int, error) { return 7, nil }
			_, _ = cache.Once(ctx, c, "o", time.Minute, run)
			_, _ = cache.Once(ctx, c, "o", time.Minute, run)
			r.expect(t, "Once", "miss Once o", "set Once o", "hit Once o")

			// InvalidateTags: one flushed event per tag, with the tag as Key.
			_ = c.Tags("t").Set(ctx, "tagged", 1, time.Minute)
			r.expect(t, "tagged Set", "set Set tagged")
			if err := c.InvalidateTags(ctx, "t"); err != nil {
				t.Fatal(err)
			}
			r.expect(t, "InvalidateTags", "flushed InvalidateTags t")
		})
	}
}

// A driver failure in Many or SetMany is an error event.
func TestEventsBatchErrors(t *testing.T) {
	f := newFlaky(t)
	c, ctx := newCache(t, cache.Config{Drivers: map[string]cache.Driver{"flaky": f}}), ctxT(t)
	r := record(c)
	defer r.sub()
	f.down.Store(true)
	_, _ = cache.Many[int](ctx, c, "a", "b")
	r.expect(t, "Many", "error Many a (err)")
	_ = c.SetMany(ctx, map[string]any{"a": 1}, time.Minute)
	r.expect(t, "SetMany", "error SetMany a (err)")
}

// An entry a driver drops for its TTL is an expired event, with the key as the caller
// named it below the global prefix (a namespace stays in it), and is counted.
func TestEventsExpired(t *testing.T) {
	var mu sync.Mutex
	now := time.Unix(1_800_000_000, 0)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	lru, err := lrucache.New(lrucache.Options{Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	c, ctx := newCache(t, cache.Config{Drivers: map[string]cache.Driver{"lru": lru}, Prefix: "app", Metrics: true}), ctxT(t)
	r := record(c, cache.EventExpired)
	defer r.sub()
	users := c.Namespace("users")
	_ = users.Set(ctx, "1", 1, time.Minute)
	_ = users.Set(ctx, "2", 1, time.Hour)
	mu.Lock()
	now = now.Add(2 * time.Minute)
	mu.Unlock()
	for _, k := range []string{"1", "2"} {
		_, _ = users.Has(ctx, k)
	}
	r.expect(t, "expiry", "expired Expire users.1")
	m := c.Metrics()
	if m.Expired != 1 || m.Drivers["lru"].Expired != 1 {
		t.Fatalf("Expired counted %d (lru %d); want 1", m.Expired, m.Drivers["lru"].Expired)
	}
}

func TestMetrics(t *testing.T) {
	c, ctx := newCache(t, cache.Config{Metrics: true}), ctxT(t)
	_ = c.Set(ctx, "k", 1, time.Minute)
	var n int
	// Durations are sampled at random, about one call in 64: 4000 calls make a run
	// without a sample a one in 10^27 event.
	for range 3000 {
		_, _ = c.Get(ctx, "k", &n)
	}
	for range 1000 {
		_, _ = c.Get(ctx, "missing", &n)
	}
	_, _ = c.Get(ctx, "", &n) // an error
	_, _ = cache.Lock(ctx, c, "lock", time.Minute, func(context.Context) (int, error) { return 0, nil })
	m := c.Metrics()
	if m.Hits != 3000 || m.Misses != 1000 || m.Sets != 1 || m.Errors != 1 || m.LockAcquired != 1 || m.LockReleased != 1 {
		t.Fatalf("counters = %+v", m)
	}
	if m.HitRate != 0.75 {
		t.Fatalf("HitRate = %v; want 0.75", m.HitRate)
	}
	get := m.Drivers["memory"].Ops["Get"]
	if get.Samples == 0 || get.P50 <= 0 || get.P99 < get.P50 {
		t.Fatalf("Get latency = %+v", get)
	}
	t.Logf("Get latency over %d samples: p50 %v p95 %v p99 %v", get.Samples, get.P50, get.P95, get.P99)
	if m := newCache(t, cache.Config{}).Metrics(); m.Hits != 0 || m.Drivers != nil {
		t.Fatal("metrics without Config.Metrics are not empty")
	}
}

func TestSubscribeAfterClose(t *testing.T) {
	c := newCache(t, cache.Config{})
	_ = c.Close()
	s := c.Subscribe(0, func(cache.Event) {})
	s() // returns at once
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
					defer s()
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
