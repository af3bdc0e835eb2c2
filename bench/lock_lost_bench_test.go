package bench

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/cachekit/cache"
	"github.com/cachekit/cache/drivers/rediscache"
	"github.com/cachekit/cache/internal/testkit/redistest"
)

// lostTTL is the lock's TTL in the lost-lock benchmarks: renewals every 100 ms.
const lostTTL = 300 * time.Millisecond

// BenchmarkLockLost measures how soon a holder under AutoExtend learns that its lock
// was taken away: another cache on the same store deletes it with cache.ForceRelease,
// at a random phase of the renewal period, and the holder's fn ctx ends with cause
// ErrLockLost at its next renewal. The latency runs from ForceRelease's return to the
// moment fn sees its ctx end. It reports, over the iterations:
//
//	lost-p50-ms, lost-p90-ms, lost-max-ms   ForceRelease → fn's ctx ended
//	lost-max-intervals                      lost-max-ms in renewal intervals (TTL/3)
//	errlocklost-%                           ctxs whose cause was ErrLockLost
//
// The cross-process tests (internal/testkit/xproc's LostForceRelease) check the order and the
// cause, not the time; the target is in docs/benchmarks.md:
//
//	cd bench && go test -run '^$' -bench BenchmarkLockLost -benchtime 20x .
func BenchmarkLockLost(b *testing.B) {
	for _, d := range lockStores() {
		b.Run(d.name, func(b *testing.B) {
			holder, other := d.pair(b)
			key := redisScope + "lock-lost." + d.name
			var lat []time.Duration
			lost := 0
			for b.Loop() {
				l, isLost, _ := lostRun(b, holder, key, func() {
					if err := cache.ForceRelease(ctx, other, key); err != nil {
						b.Fatalf("ForceRelease: %v", err)
					}
				})
				lat = append(lat, l)
				if isLost {
					lost++
				}
			}
			reportLost(b, "lost", lat, lost)
		})
	}
}

// BenchmarkLockLostServerStopped measures the same when the holder's Redis server is
// killed (a fresh redis-server per iteration), and how soon the release that follows
// fn fails on the dead server (the driver's fail-fast lock client: one dial):
//
//	stopped-p50-ms, stopped-p90-ms, stopped-max-ms   kill → fn's ctx ended
//	stopped-max-intervals, errlocklost-%             as in BenchmarkLockLost
//	release-p50-ms, release-max-ms                   fn returned → Lock returned, its
//	                                                 release failed
//
//	cd bench && go test -run '^$' -bench BenchmarkLockLostServerStopped -benchtime 10x .
func BenchmarkLockLostServerStopped(b *testing.B) {
	if redistest.Binary() == "" {
		b.Skip("needs redis-server")
	}
	var lat, rel []time.Duration
	lost := 0
	for b.Loop() {
		b.StopTimer()
		srv := redistest.Start(b)
		d, err := rediscache.New(rediscache.Options{URL: srv.URL()})
		if err != nil {
			b.Fatal(err)
		}
		holder := handoffCache(b, d)
		b.StartTimer()
		l, isLost, release := lostRun(b, holder, "lock-lost.stopped", srv.Stop)
		b.StopTimer()
		_ = holder.Close() // its pool would redial the dead server until the end
		b.StartTimer()
		lat, rel = append(lat, l), append(rel, release)
		if isLost {
			lost++
		}
	}
	reportLost(b, "stopped", lat, lost)
	slices.Sort(rel)
	b.ReportMetric(msOf(quantile(rel, 0.5)), "release-p50-ms")
	b.ReportMetric(msOf(rel[len(rel)-1]), "release-max-ms")
}

// lostRun holds key on holder under AutoExtend, calls take (which ends the lock) at a
// random phase of the renewal period, and returns how long after take returned fn's
// ctx ended, whether its cause was ErrLockLost, and how long Lock took to return after
// fn did (its release).
func lostRun(b *testing.B, holder *cache.Cache, key string, take func()) (lat time.Duration, isLost bool, release time.Duration) {
	held := make(chan struct{})
	type result struct {
		ended, returned time.Time
		lost            bool
	}
	res := make(chan result, 1)
	go func() {
		var r result
		_, _ = cache.LockWith(ctx, holder, key, cache.LockOptions{TTL: lostTTL, AutoExtend: true},
			func(fctx context.Context) (struct{}, error) {
				close(held)
				<-fctx.Done()
				r.ended = time.Now()
				r.lost = errors.Is(context.Cause(fctx), cache.ErrLockLost)
				return struct{}{}, nil
			})
		r.returned = time.Now()
		res <- r
	}()
	<-held
	time.Sleep(lostTTL/3 + rand.N(lostTTL/3)) // past a renewal, at a random phase
	take()
	taken := time.Now()
	r := <-res
	return r.ended.Sub(taken), r.lost, r.returned.Sub(r.ended)
}

// reportLost reports the quantiles of lat (sorted here), in ms and in renewal
// intervals, and the share of ends caused by ErrLockLost.
func reportLost(b *testing.B, name string, lat []time.Duration, lost int) {
	slices.Sort(lat)
	b.ReportMetric(msOf(quantile(lat, 0.5)), name+"-p50-ms")
	b.ReportMetric(msOf(quantile(lat, 0.9)), name+"-p90-ms")
	b.ReportMetric(msOf(lat[len(lat)-1]), name+"-max-ms")
	b.ReportMetric(float64(lat[len(lat)-1])/float64(lostTTL/3), name+"-max-intervals")
	b.ReportMetric(100*float64(lost)/float64(len(lat)), "errlocklost-%")
}
