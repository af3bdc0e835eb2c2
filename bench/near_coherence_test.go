package bench

import (
	"context"
	"flag"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gocache "github.com/go-redis/cache/v9"

	"github.com/cachekit/cache"
	"github.com/cachekit/cache/drivers/rediscache"
	"github.com/cachekit/cache/internal/testkit/redistest"
)

var coherenceWrites = flag.Int("coherence.writes", 2000, "writes of TestNearCoherenceVersusGoRedisCache, one a millisecond or so")

// coherenceWindow is the staleness both caches are judged against: cachekit's default
// MaxStaleness.
const coherenceWindow = 100 * time.Millisecond

// TestNearCoherenceVersusGoRedisCache runs the same scene on cachekit's near cache and on
// go-redis/cache's local cache (TinyLFU, its documented setup): one writer, on a client
// of its own, writes a counter under one key every millisecond or so; three readers,
// each a cache of its own (as on three servers), read the key continuously. A read is
// stale when the writer had acknowledged a newer value more than coherenceWindow before
// the read began. It reports, per cache, the reads, the stale reads, and the staleness
// of the reads (how long before the read its value had been replaced: p50, p99, max).
// cachekit must have no stale read; go-redis/cache's count is reported for the docs.
func TestNearCoherenceVersusGoRedisCache(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	url := redistest.URL(t)
	if redistest.Kind() == redistest.KindMiniredis {
		t.Skip("needs a real redis-server (CLIENT TRACKING)")
	}
	ctx := context.Background()

	t.Run("impl=cachekit-near", func(t *testing.T) {
		key := redisScope + "coherence.near"
		writer := newRedisClient(t)
		write := func(n int64) error { return writer.Set(ctx, key, n, 0).Err() } // JSON of an integer
		var readers []func() (int64, error)
		for range 3 {
			d, err := rediscache.New(rediscache.Options{URL: url, Near: &rediscache.NearOptions{MaxStaleness: coherenceWindow}})
			if err != nil {
				t.Fatal(err)
			}
			c, err := cache.New(cache.Config{Drivers: map[string]cache.Driver{"redis": d}})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = c.Close() })
			readers = append(readers, func() (int64, error) {
				n, _, err := cache.GetAs[int64](ctx, c, key)
				return n, err
			})
		}
		r := coherenceScene(t, write, readers)
		if r.stale != 0 {
			t.Errorf("cachekit's near cache: %d stale reads beyond %v", r.stale, coherenceWindow)
		}
	})

	t.Run("impl=go-redis-cache", func(t *testing.T) {
		key := redisScope + "coherence.goredis"
		writerCache := gocache.New(&gocache.Options{Redis: newRedisClient(t)})
		write := func(n int64) error {
			return writerCache.Set(&gocache.Item{Ctx: ctx, Key: key, Value: n, TTL: time.Hour})
		}
		var readers []func() (int64, error)
		for range 3 {
			c := gocache.New(&gocache.Options{Redis: newRedisClient(t), LocalCache: gocache.NewTinyLFU(1000, time.Minute)})
			readers = append(readers, func() (int64, error) {
				var n int64
				err := c.Get(ctx, key, &n)
				if err == gocache.ErrCacheMiss {
					err = nil
				}
				return n, err
			})
		}
		coherenceScene(t, write, readers)
	})
}

type coherenceResult struct{ reads, stale int }

// coherenceScene runs the writer and the readers and reports what the readers saw.
func coherenceScene(t *testing.T, write func(int64) error, readers []func() (int64, error)) coherenceResult {
	t.Helper()
	if err := write(0); err != nil {
		t.Fatal(err)
	}
	epoch := time.Now()
	n := *coherenceWrites
	acked := make([]atomic.Int64, n+1) // acked[i]: when the write of i returned, ns from epoch
	type read struct{ start, value int64 }
	var stop atomic.Bool
	var wg sync.WaitGroup
	samples := make([][]read, len(readers))
	errs := make(chan error, len(readers)+1)
	for i, get := range readers {
		wg.Go(func() {
			for !stop.Load() {
				start := int64(time.Since(epoch))
				v, err := get()
				if err != nil {
					errs <- err
					return
				}
				samples[i] = append(samples[i], read{start, v})
				time.Sleep(20 * time.Microsecond)
			}
		})
	}
	for i := 1; i <= n; i++ {
		if err := write(int64(i)); err != nil {
			t.Fatal(err)
		}
		acked[i].Store(int64(time.Since(epoch)))
		time.Sleep(time.Millisecond)
	}
	time.Sleep(2 * coherenceWindow) // reads after the last write, past the window
	stop.Store(true)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// The staleness of a read: how long before it began its value had been replaced (the
	// next value acknowledged), 0 if it had not.
	var res coherenceResult
	var staleness []time.Duration
	for _, rs := range samples {
		for _, r := range rs {
			res.reads++
			var s time.Duration
			if next := r.value + 1; next >= 1 && next <= int64(n) {
				if a := acked[next].Load(); a != 0 && a < r.start {
					s = time.Duration(r.start - a)
				}
			}
			staleness = append(staleness, s)
			if s > coherenceWindow {
				res.stale++
			}
		}
	}
	slices.Sort(staleness)
	q := func(p float64) time.Duration { return staleness[int(p*float64(len(staleness)-1))] }
	t.Logf("%d writes, %d reads by %d readers: %d stale beyond %v; staleness p50 %v, p99 %v, max %v",
		n, res.reads, len(readers), res.stale, coherenceWindow, q(0.5), q(0.99), staleness[len(staleness)-1])
	return res
}
