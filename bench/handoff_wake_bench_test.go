package bench

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cachekit/cache"
	"github.com/cachekit/cache/driver"
	"github.com/cachekit/cache/drivers/filecache"
	"github.com/cachekit/cache/drivers/lrucache"
	"github.com/cachekit/cache/drivers/memorycache"
	"github.com/cachekit/cache/internal/wait"
)

// BenchmarkLockHandoff measures how soon a lock waiter (LockOptions.Wait) holds the lock
// after its holder released it, on each driver that can lock. The conformance suite
// (drivertest) checks that a waiter on a driver whose Watch works is woken by the release rather
// than by its poll; how fast that is, is measured here.
//
// Each iteration is one handoff: a holder takes the lock; a waiter, on a cache of its
// own (another process, in effect: another client, pool or driver on the same store),
// asks for it with Wait; once the waiter's first attempt has failed, the holder keeps
// the lock for wakeHold more, long enough for the waiter's poll to have backed off, and
// releases it. The latency is from the holder's call to release to the moment the
// waiter's fn runs. It reports, over the iterations:
//
//	handoff-p50-ms, handoff-p90-ms, handoff-max-ms   release → next holder running
//	watched-%                                        handoffs whose winning attempt the
//	                                                 release's notification woke (the
//	                                                 rest: the poll)
//
// ns/op is the whole cycle, wakeHold included: read the metrics. The targets and the
// latest figures are in docs/benchmarks.md, measured with
//
//	cd bench && GOWORK=../go.work go test -run '^$' -bench BenchmarkLockHandoff -benchtime 100x .
func BenchmarkLockHandoff(b *testing.B) {
	for _, d := range lockStores() {
		b.Run(d.name, func(b *testing.B) {
			holder, waiter := d.pair(b)
			key := redisScope + "handoff-wake." + d.name
			var lat []time.Duration
			watched := 0
			for b.Loop() {
				l, why := handoffOnce(b, holder, waiter, key)
				lat = append(lat, l)
				if why == wait.Watched {
					watched++
				}
			}
			slices.Sort(lat)
			b.ReportMetric(msOf(quantile(lat, 0.5)), "handoff-p50-ms")
			b.ReportMetric(msOf(quantile(lat, 0.9)), "handoff-p90-ms")
			b.ReportMetric(msOf(lat[len(lat)-1]), "handoff-max-ms")
			b.ReportMetric(100*float64(watched)/float64(len(lat)), "watched-%")
		})
	}
}

// lockStore makes two caches over one store that can lock: a holder's and another's
// (two clients, pools or drivers: two processes, in effect).
type lockStore struct {
	name string
	// pair returns the holder's cache and the other's, over one store.
	pair func(b *testing.B) (holder, other *cache.Cache)
}

// lockStores are the stores of the lock benchmarks: every driver that can lock.
func lockStores() []lockStore {
	return []lockStore{
		{"memory", func(b *testing.B) (*cache.Cache, *cache.Cache) {
			d, err := memorycache.New(memorycache.Options{})
			if err != nil {
				b.Fatal(err)
			}
			return handoffCache(b, d), handoffCache(b, d)
		}},
		{"lru", func(b *testing.B) (*cache.Cache, *cache.Cache) {
			d, err := lrucache.New(lrucache.Options{})
			if err != nil {
				b.Fatal(err)
			}
			return handoffCache(b, d), handoffCache(b, d)
		}},
		{"file", func(b *testing.B) (*cache.Cache, *cache.Cache) {
			dir := b.TempDir()
			var cs [2]*cache.Cache
			for i := range cs {
				d, err := filecache.New(filecache.Options{Dir: dir, SweepInterval: -1})
				if err != nil {
					b.Fatal(err)
				}
				cs[i] = handoffCache(b, d)
			}
			return cs[0], cs[1]
		}},
		{"redis", func(b *testing.B) (*cache.Cache, *cache.Cache) {
			return newRedisCache(b), newRedisCache(b)
		}},
		{"postgres", func(b *testing.B) (*cache.Cache, *cache.Cache) {
			url := pgURL(b)
			return newPgCache(b, url, false), newPgCache(b, url, false)
		}},
	}
}

// wakeHold is how long the holder keeps the lock after the waiter's first attempt
// failed: the waiter's poll (10 ms doubling to 250 ms, with jitter) has backed off by
// then, so that a prompt handoff needs the release's notification.
const wakeHold = 20 * time.Millisecond

// handoffCache is a manager over d (closed with it at b's cleanup).
func handoffCache(b *testing.B, d driver.Driver) *cache.Cache {
	b.Helper()
	c, err := cache.New(cache.Config{Drivers: map[string]cache.Driver{"d": d}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = c.Close() })
	return c
}

// handoffOnce makes one handoff of key from holder to waiter and returns its latency and
// why the waiter's winning attempt ran.
func handoffOnce(b *testing.B, holder, waiter *cache.Cache, key string) (time.Duration, wait.Why) {
	h, err := cache.Acquire(ctx, holder, key, cache.LockOptions{TTL: lockTTL})
	if err != nil {
		b.Fatalf("the holder: %v", err)
	}
	waiting := make(chan struct{})
	var once sync.Once
	p := &wait.Probe{Tried: func(_ wait.Why, done bool, err error) {
		if !done && err == nil {
			once.Do(func() { close(waiting) })
		}
	}}
	type result struct {
		at  time.Time
		err error
	}
	res := make(chan result, 1)
	go func() {
		out, err := cache.LockWith(wait.WithProbe(ctx, p), waiter, key, cache.LockOptions{TTL: lockTTL, Wait: waitMax},
			func(context.Context) (time.Time, error) { return time.Now(), nil })
		if err == nil && !out.Acquired {
			err = errors.New("not acquired")
		}
		res <- result{out.Value, err}
	}()
	select {
	case <-waiting:
	case r := <-res:
		b.Fatalf("the waiter returned before it waited: %v", r.err)
	}
	time.Sleep(wakeHold)
	released := time.Now()
	if err := h.Release(ctx); err != nil {
		b.Fatalf("release: %v", err)
	}
	r := <-res
	if r.err != nil {
		b.Fatalf("the waiter: %v", r.err)
	}
	why, _ := p.Done()
	return r.at.Sub(released), why
}

func msOf(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
