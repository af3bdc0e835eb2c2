package bench

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/cachekit/cache"
	"github.com/cachekit/cache/drivers/rediscache"
)

// BenchmarkNearGetHit reads a present key with cache.GetAs[string] through the manager:
// over rediscache with Options.Near (a near hit: no round trip, no decoding), over the
// memory driver (the in-process bound), and over rediscache without Near (a round trip
// to Redis on loopback). Each serially and from GOMAXPROCS goroutines (RunParallel).
// Serially it also reports cpu-ns/op, the thread's own CPU time per read (see
// threadCPU), which the load of other processes on the machine does not inflate as it
// does ns/op. The -prefix variants give the manager a prefix (Config.Prefix): a hit then looks up
// the joined key, which must cost no allocation either. The near keys are read once
// before the clock starts, so that every read is a hit as
// long as the tracking connection stays current (a read while it lags goes to Redis,
// and counts).
func BenchmarkNearGetHit(b *testing.B) {
	impls := []struct {
		name string
		open func(b *testing.B) (*cache.Cache, string)
	}{
		{"near", func(b *testing.B) (*cache.Cache, string) { return newNearCache(b), redisScope + "near." }},
		{"near-prefix", func(b *testing.B) (*cache.Cache, string) { return newNearCachePrefixed(b), "" }},
		{"memory", func(b *testing.B) (*cache.Cache, string) { return newMemory(b, ""), "" }},
		{"memory-prefix", func(b *testing.B) (*cache.Cache, string) { return newMemory(b, "app"), "" }},
		{"redis", func(b *testing.B) (*cache.Cache, string) { return newRedisCache(b), redisScope + "near." }},
	}
	for _, im := range impls {
		b.Run("impl="+im.name, func(b *testing.B) {
			c, scope := im.open(b)
			ks := preloadNear(b, c, scope)
			ctx := context.Background()
			b.Run("mode=serial", func(b *testing.B) {
				b.ReportAllocs()
				defer lockThread()()
				cpu0, ok0 := threadCPU()
				i := 0
				for b.Loop() {
					if _, ok, err := cache.GetAs[string](ctx, c, ks[i&mask]); !ok || err != nil {
						b.Fatalf("miss: %v", err)
					}
					i++
				}
				if cpu1, ok1 := threadCPU(); ok0 && ok1 {
					b.ReportMetric(float64(cpu1-cpu0)/float64(b.N), "cpu-ns/op")
				}
			})
			b.Run("mode=parallel", func(b *testing.B) {
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					for i := start(); pb.Next(); i++ {
						if _, ok, err := cache.GetAs[string](ctx, c, ks[i&mask]); !ok || err != nil {
							b.Errorf("miss: %v", err)
							return
						}
					}
				})
			})
		})
	}
}

// newNearCache is newRedisCache with Options.Near (its defaults).
func newNearCache(tb testing.TB) *cache.Cache {
	tb.Helper()
	return newRedisCacheWith(tb, rediscache.Options{Client: newRedisClient(tb), Near: &rediscache.NearOptions{}})
}

// newNearCachePrefixed is newNearCache under a prefix of the process's own, with every
// key written.
func newNearCachePrefixed(tb testing.TB) *cache.Cache {
	tb.Helper()
	d, err := rediscache.New(rediscache.Options{Client: newRedisClient(tb), Near: &rediscache.NearOptions{}})
	if err != nil {
		tb.Fatal(err)
	}
	c := newManager(tb, d, "nearbench"+strconv.Itoa(os.Getpid()))
	tb.Cleanup(func() { _ = c.Remove(context.Background(), keys...) })
	return c
}

// preloadNear writes every key under scope (the memory driver has them already, scope
// ""), waits for a near cache's first pong, and reads each key once so that a near
// cache keeps it. It returns the keys.
func preloadNear(tb testing.TB, c *cache.Cache, scope string) []string {
	tb.Helper()
	ctx := context.Background()
	ks := make([]string, numKeys)
	for i, k := range keys {
		ks[i] = scope + k
		if scope != "" {
			if err := c.Set(ctx, ks[i], vals[i], 0); err != nil {
				tb.Fatal(err)
			}
		}
	}
	time.Sleep(100 * time.Millisecond) // a near cache's tracking connection is confirmed
	for _, k := range ks {
		if _, ok, err := cache.GetAs[string](ctx, c, k); !ok || err != nil {
			tb.Fatalf("preload %q: %v, %v", k, ok, err)
		}
	}
	if scope != "" {
		tb.Cleanup(func() { _ = c.Remove(context.Background(), ks...) })
	}
	return ks
}
