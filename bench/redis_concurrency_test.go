package bench

import (
	"flag"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cachekit/cache"
	"github.com/cachekit/cache/drivers/rediscache"
)

// The concurrency benchmarks: throughput and tail latency of one Redis under many
// concurrent callers, each on a key of its own (uncontended), for conc = 1, 64 and 256
// goroutines. Every row reports ops/s (operations completed per second, all goroutines
// together) and p99-µs (the 99th percentile of one operation's latency, as a caller
// sees it), besides ns/op (the inverse of ops/s).
//
// Lock impls (acquire + release):
//
//	raw-setnx-del     SET NX EX + DEL through go-redis's pool: the raw floor
//	cachekit          cache.Lock, empty fn, rediscache as it comes: concurrent callers'
//	                  commands share pipelines (go-redis's automatic pipelining)
//	cachekit-nobatch  the same with Options.NoBatch: one command per pooled connection
//	                  per round trip
//	redislock         bsm/redislock Obtain (no retry) + Release
//
// Get impls (a hit on a present string):
//
//	go-redis          GET through go-redis's pool: the raw floor
//	cachekit          c.Get into a *string, rediscache as it comes (batching)
//	cachekit-nobatch  the same with Options.NoBatch
//
// Every implementation has a go-redis client of its own, with go-redis's defaults (a pool
// of 10 connections per GOMAXPROCS).

// concFlag are the numbers of concurrent goroutines, comma-separated.
var concFlag = flag.String("conc", "1,64,256", "goroutines of the Redis concurrency benchmarks, comma-separated")

// concLevels parses -conc.
func concLevels(b *testing.B) []int {
	var out []int
	for f := range strings.SplitSeq(*concFlag, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			b.Fatalf("-conc: bad number of goroutines %q", f)
		}
		out = append(out, n)
	}
	return out
}

// newRedisCacheBatch is newRedisCache, with Options.NoBatch when batch is false.
func newRedisCacheBatch(tb testing.TB, batch bool) *cache.Cache {
	tb.Helper()
	return newRedisCacheWith(tb, rediscache.Options{Client: newRedisClient(tb), NoBatch: !batch})
}

// runConcurrent runs b.N operations from conc goroutines: goroutine g calls the
// function newOp(g) returns until b.N calls have been claimed. It reports ops/s and the
// p99 latency of one call, in µs.
func runConcurrent(b *testing.B, conc int, newOp func(g int) func() error) {
	b.Helper()
	ops := make([]func() error, conc)
	for g := range ops {
		ops[g] = newOp(g)
	}
	var (
		next   atomic.Int64
		wg     sync.WaitGroup
		failed atomic.Bool
		lats   = make([][]time.Duration, conc)
	)
	per := b.N/conc + 1
	b.ResetTimer()
	t0 := time.Now()
	for g := range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lat := make([]time.Duration, 0, per)
			op := ops[g]
			for next.Add(1) <= int64(b.N) {
				t := time.Now()
				if err := op(); err != nil {
					if !failed.Swap(true) {
						b.Errorf("goroutine %d: %v", g, err)
					}
					break
				}
				lat = append(lat, time.Since(t))
			}
			lats[g] = lat
		}()
	}
	wg.Wait()
	elapsed := time.Since(t0)
	b.StopTimer()
	all := slices.Concat(lats...)
	if len(all) == 0 {
		return
	}
	slices.Sort(all)
	p99 := all[min(len(all)-1, len(all)*99/100)]
	b.ReportMetric(float64(len(all))/elapsed.Seconds(), "ops/s")
	b.ReportMetric(float64(p99)/float64(time.Microsecond), "p99-µs")
}

// BenchmarkRedisLockConcurrency is an uncontended lock (acquire, release) from conc
// goroutines, each on a key of its own.
func BenchmarkRedisLockConcurrency(b *testing.B) {
	for _, conc := range concLevels(b) {
		b.Run("conc="+strconv.Itoa(conc), func(b *testing.B) {
			for _, impl := range []string{"cachekit", "cachekit-nobatch", "raw-setnx-del", "redislock"} {
				b.Run("impl="+impl, func(b *testing.B) {
					key := func(g int) string {
						return redisScope + "clock." + impl + "." + strconv.Itoa(conc) + "." + strconv.Itoa(g)
					}
					switch impl {
					case "cachekit", "cachekit-nobatch":
						c := newRedisCacheBatch(b, impl == "cachekit")
						runConcurrent(b, conc, func(g int) func() error {
							k := key(g)
							return func() error {
								out, err := cache.Lock(ctx, c, k, lockTTL, work)
								if err == nil && !out.Acquired {
									err = cache.ErrNotAcquired
								}
								return err
							}
						})
					case "raw-setnx-del":
						rdb := newRedisClient(b)
						runConcurrent(b, conc, func(g int) func() error {
							k := key(g)
							return func() error { return rawLock(rdb, k) }
						})
					case "redislock":
						rl := newRedislock(b)
						runConcurrent(b, conc, func(g int) func() error {
							k := key(g)
							return func() error {
								l, err := rl.Obtain(ctx, k, lockTTL, nil)
								if err != nil {
									return err
								}
								return l.Release(ctx)
							}
						})
					}
				})
			}
		})
	}
}

// rawLock is the raw floor of a lock: SET NX EX, then DEL.
func rawLock(rdb *redis.Client, key string) error {
	ok, err := rdb.SetNX(ctx, key, floorToken, lockTTL).Result()
	if err != nil {
		return err
	}
	if !ok {
		return cache.ErrNotAcquired
	}
	return rdb.Del(ctx, key).Err()
}

// BenchmarkRedisGetConcurrency is a Get hit from conc goroutines, each on a key of its
// own.
func BenchmarkRedisGetConcurrency(b *testing.B) {
	preloadRedis(b, true, true)
	for _, conc := range concLevels(b) {
		b.Run("conc="+strconv.Itoa(conc), func(b *testing.B) {
			for _, impl := range []string{"cachekit", "cachekit-nobatch", "go-redis"} {
				b.Run("impl="+impl, func(b *testing.B) {
					switch impl {
					case "cachekit", "cachekit-nobatch":
						c := newRedisCacheBatch(b, impl == "cachekit")
						runConcurrent(b, conc, func(g int) func() error {
							k := mgrKeys[g&mask]
							return func() error {
								var s string
								found, err := c.Get(ctx, k, &s)
								if err == nil && !found {
									err = errMiss
								}
								return err
							}
						})
					case "go-redis":
						rdb := newRedisClient(b)
						runConcurrent(b, conc, func(g int) func() error {
							k := rawKeys[g&mask]
							return func() error { return rdb.Get(ctx, k).Err() }
						})
					}
				})
			}
		})
	}
}

// BenchmarkRedisConcurrencyInterleaved is conc=1 taking turns (see interleave): each
// round runs one call of every implementation, in an order that rotates, so that the
// ratio between two implementations in one count is paired against the machine's load.
// It reports ns/<impl>, the mean time of one call.
func BenchmarkRedisConcurrencyInterleaved(b *testing.B) {
	b.Run("op=lock", func(b *testing.B) {
		cb, cp, rdb, rl := newRedisCacheBatch(b, true), newRedisCacheBatch(b, false), newRedisClient(b), newRedislock(b)
		k := redisScope + "ilockc."
		lock := func(c *cache.Cache, key string) func() error {
			return func() error {
				out, err := cache.Lock(ctx, c, key, lockTTL, work)
				if err == nil && !out.Acquired {
					err = cache.ErrNotAcquired
				}
				return err
			}
		}
		interleave(b, []timedOp{
			{"cachekit", lock(cb, k+"cachekit")},
			{"cachekit-nobatch", lock(cp, k+"cachekit-nobatch")},
			{"raw-setnx-del", func() error { return rawLock(rdb, k+"raw") }},
			{"redislock", func() error {
				l, err := rl.Obtain(ctx, k+"redislock", lockTTL, nil)
				if err != nil {
					return err
				}
				return l.Release(ctx)
			}},
		})
	})
	b.Run("op=get", func(b *testing.B) {
		preloadRedis(b, true, true)
		cb, cp, rdb := newRedisCacheBatch(b, true), newRedisCacheBatch(b, false), newRedisClient(b)
		get := func(c *cache.Cache) func() error {
			i := 0
			return func() error {
				i++
				var s string
				found, err := c.Get(ctx, mgrKeys[i&mask], &s)
				if err == nil && !found {
					err = errMiss
				}
				return err
			}
		}
		i := 0
		interleave(b, []timedOp{
			{"cachekit", get(cb)},
			{"cachekit-nobatch", get(cp)},
			{"go-redis", func() error {
				i++
				return rdb.Get(ctx, rawKeys[i&mask]).Err()
			}},
		})
	})
}
