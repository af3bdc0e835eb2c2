package bench

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/cachekit/cache"
	"github.com/cachekit/cache/drivers/rediscache"
	"github.com/cachekit/cache/internal/testkit/redistest"
)

// outageLoader is how long the loader of BenchmarkRedisOutage's Remember takes.
const outageLoader = 20 * time.Millisecond

// BenchmarkRedisOutage measures what callers pay when Redis stops, on a redis-server of
// its own per iteration (stopped as a crash would, so its port refuses connections):
//
//   - failed-read-ms: a Get through a driver with the breaker off, the baseline: one
//     read that fails after go-redis's redials;
//   - first-remember-ms: the first fail-open Remember through a driver with the breaker
//     on, its loader taking 20 ms; over-ms is that minus the failed read and the
//     loader (target: at most 500 ms, for the worst iteration too: max-over-ms);
//   - second-get-us: the next Get of the same caller, which must find the breaker open
//     (target: fails fast, with ErrUnavailable).
//
// ns/op is the setup-free total of the two measured calls, and means little.
func BenchmarkRedisOutage(b *testing.B) {
	if redistest.Binary() == "" {
		b.Skip("needs redis-server on PATH")
	}
	ctx := context.Background()
	var failed, first, second, worst time.Duration
	for range b.N {
		b.StopTimer()
		srv := redistest.Start(b)
		off := outageCache(b, srv.URL(), rediscache.BreakerOptions{Off: true})
		on := outageCache(b, srv.URL(), rediscache.BreakerOptions{})
		srv.Stop()

		start := time.Now()
		if _, _, err := cache.GetAs[string](cache.WithFailOpen(ctx, false), off, "k"); err == nil {
			b.Fatal("Get on a stopped Redis: no error")
		}
		read := time.Since(start)

		b.StartTimer()
		start = time.Now()
		v, err := cache.Remember(ctx, on, "k", time.Minute, func(context.Context) (string, error) {
			time.Sleep(outageLoader)
			return "loaded", nil
		})
		remember := time.Since(start)
		if err != nil || v != "loaded" {
			b.Fatalf("fail-open Remember on a stopped Redis = %q, %v", v, err)
		}
		start = time.Now()
		_, _, err = cache.GetAs[string](cache.WithFailOpen(ctx, false), on, "k")
		next := time.Since(start)
		b.StopTimer()
		if !errors.Is(err, rediscache.ErrUnavailable) {
			b.Fatalf("the Get after the first fail-open Remember: %v; want ErrUnavailable", err)
		}
		failed, first, second = failed+read, first+remember, second+next
		worst = max(worst, remember-read-outageLoader)
	}
	n := float64(b.N)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) / n }
	b.ReportMetric(ms(failed), "failed-read-ms")
	b.ReportMetric(ms(first), "first-remember-ms")
	b.ReportMetric(ms(first-failed)-float64(outageLoader/time.Millisecond), "over-ms")
	b.ReportMetric(float64(worst)/float64(time.Millisecond), "max-over-ms")
	b.ReportMetric(float64(second)/float64(time.Microsecond)/n, "second-get-us")
}

// outageCache is a fail-open cache over a rediscache driver with breaker o on url, its
// pool warmed by a Set; closed at cleanup.
func outageCache(b *testing.B, url string, o rediscache.BreakerOptions) *cache.Cache {
	b.Helper()
	d, err := rediscache.New(rediscache.Options{URL: url, Breaker: o})
	if err != nil {
		b.Fatal(err)
	}
	c, err := cache.New(cache.Config{Drivers: map[string]cache.Driver{"redis": d}, FailOpen: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = c.Close(); _ = d.Close() })
	if err := c.Set(context.Background(), "warm", "v", time.Minute); err != nil {
		b.Fatal(err)
	}
	return c
}
