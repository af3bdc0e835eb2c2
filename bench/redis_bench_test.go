package bench

import (
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/go-redsync/redsync/v4"

	"github.com/cachekit/cache"
)

// The Redis benchmarks: one local redis-server for the whole test binary (see
// redis_setup_test.go), each implementation on a go-redis client of its own.
//
// Lock benchmarks, impl names:
//
//	floor             SET key token NX EX + DEL through go-redis: two round trips, no
//	                  token check on release: the least a lock can cost
//	cachekit          cache.Lock with an empty fn over rediscache (SET NX PX, then the
//	                  compare-and-delete script with EVALSHA)
//	cachekit-acquire  cache.Acquire + LockHandle.Release: the same commands, no fn
//	redislock         bsm/redislock Obtain (no retry) + Release: two EVALSHAs
//	redsync           go-redsync NewMutex(WithTries(1)) + LockContext + UnlockContext on
//	                  one goredis/v9 pool: SET NX EX (go-redis writes a TTL of whole
//	                  seconds as EX), then EVALSHA
//
// Every lock has the same TTL (a minute). The serial benchmark takes and releases the
// same key on every iteration; the parallel one gives each goroutine a key of its own.

// BenchmarkRedisLock is an uncontended lock: acquire, release, one goroutine.
func BenchmarkRedisLock(b *testing.B) {
	key := redisScope + "lock"
	b.Run("impl=floor", func(b *testing.B) {
		rdb := newRedisClient(b)
		b.ReportAllocs()
		for b.Loop() {
			if ok, err := rdb.SetNX(ctx, key, floorToken, lockTTL).Result(); !ok || err != nil {
				b.Fatal("not acquired", err)
			}
			if err := rdb.Del(ctx, key).Err(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("impl=cachekit", func(b *testing.B) {
		c := newRedisCache(b)
		b.ReportAllocs()
		for b.Loop() {
			if out, err := cache.Lock(ctx, c, key, lockTTL, work); !out.Acquired || err != nil {
				b.Fatal("not acquired", err)
			}
		}
	})
	b.Run("impl=cachekit-acquire", func(b *testing.B) {
		c := newRedisCache(b)
		o := cache.LockOptions{TTL: lockTTL}
		b.ReportAllocs()
		for b.Loop() {
			l, err := cache.Acquire(ctx, c, key, o)
			if err != nil {
				b.Fatal(err)
			}
			if err := l.Release(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("impl=redislock", func(b *testing.B) {
		rl := newRedislock(b)
		b.ReportAllocs()
		for b.Loop() {
			l, err := rl.Obtain(ctx, key, lockTTL, nil)
			if err != nil {
				b.Fatal(err)
			}
			if err := l.Release(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("impl=redsync", func(b *testing.B) {
		rs := newRedsync(b)
		b.ReportAllocs()
		for b.Loop() {
			m := rs.NewMutex(key, redsync.WithTries(1), redsync.WithExpiry(lockTTL))
			if err := m.LockContext(ctx); err != nil {
				b.Fatal(err)
			}
			if ok, err := m.UnlockContext(ctx); !ok || err != nil {
				b.Fatal("not released", err)
			}
		}
	})
}

// BenchmarkRedisLockParallel is BenchmarkRedisLock from GOMAXPROCS goroutines, each on a
// key of its own: uncontended, but the goroutines share the implementation's client.
func BenchmarkRedisLockParallel(b *testing.B) {
	pkey := func() string { return redisScope + "plock." + strconv.Itoa(start()) }
	b.Run("impl=floor", func(b *testing.B) {
		rdb := newRedisClient(b)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			key := pkey()
			for pb.Next() {
				if ok, err := rdb.SetNX(ctx, key, floorToken, lockTTL).Result(); !ok || err != nil {
					b.Error("not acquired", err)
					return
				}
				if err := rdb.Del(ctx, key).Err(); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	b.Run("impl=cachekit", func(b *testing.B) {
		c := newRedisCache(b)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			key := pkey()
			for pb.Next() {
				if out, err := cache.Lock(ctx, c, key, lockTTL, work); !out.Acquired || err != nil {
					b.Error("not acquired", err)
					return
				}
			}
		})
	})
	b.Run("impl=cachekit-acquire", func(b *testing.B) {
		c := newRedisCache(b)
		o := cache.LockOptions{TTL: lockTTL}
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			key := pkey()
			for pb.Next() {
				l, err := cache.Acquire(ctx, c, key, o)
				if err != nil {
					b.Error(err)
					return
				}
				if err := l.Release(ctx); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	b.Run("impl=redislock", func(b *testing.B) {
		rl := newRedislock(b)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			key := pkey()
			for pb.Next() {
				l, err := rl.Obtain(ctx, key, lockTTL, nil)
				if err != nil {
					b.Error(err)
					return
				}
				if err := l.Release(ctx); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	b.Run("impl=redsync", func(b *testing.B) {
		rs := newRedsync(b)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			key := pkey()
			for pb.Next() {
				m := rs.NewMutex(key, redsync.WithTries(1), redsync.WithExpiry(lockTTL))
				if err := m.LockContext(ctx); err != nil {
					b.Error(err)
					return
				}
				if ok, err := m.UnlockContext(ctx); !ok || err != nil {
					b.Error("not released", err)
					return
				}
			}
		})
	})
}

// redisKeys are the keys of the Redis Get and Set benchmarks, round robin over numKeys
// as in-process: rawKeys for go-redis, mgrKeys for the manager (same length, so that
// both send the same bytes but for the value's JSON quotes).
var rawKeys, mgrKeys = func() ([]string, []string) {
	r := make([]string, numKeys)
	m := make([]string, numKeys)
	for i, k := range keys {
		r[i] = redisScope + "raw." + k
		m[i] = redisScope + "mgr." + k
	}
	return r, m
}()

// valueTTL is the TTL of every value the Redis Get and Set benchmarks write.
const valueTTL = time.Hour

// preloadRedis writes every key of rawKeys (raw strings, through go-redis) and of
// mgrKeys (through the manager: JSON strings).
func preloadRedis(tb testing.TB, withRaw, withManager bool) {
	tb.Helper()
	if withRaw {
		rdb := newRedisClient(tb)
		p := rdb.Pipeline()
		for i, k := range rawKeys {
			p.Set(ctx, k, vals[i], valueTTL)
		}
		if _, err := p.Exec(ctx); err != nil {
			tb.Fatal(err)
		}
	}
	if withManager {
		c := newRedisCache(tb)
		for i, k := range mgrKeys {
			if err := c.Set(ctx, k, vals[i], valueTTL); err != nil {
				tb.Fatal(err)
			}
		}
	}
}

// BenchmarkRedisGetHit reads a present string: raw go-redis (GET, the reply as a
// string) beside the manager (GET, then the JSON codec's decode), with c.Get into a
// *string declared per call and with cache.GetAs[string].
func BenchmarkRedisGetHit(b *testing.B) {
	b.Run("impl=go-redis", func(b *testing.B) {
		preloadRedis(b, true, false)
		rdb := newRedisClient(b)
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if _, err := rdb.Get(ctx, rawKeys[i&mask]).Result(); err != nil {
				b.Fatal("miss", err)
			}
			i++
		}
	})
	b.Run("impl=cachekit", func(b *testing.B) {
		preloadRedis(b, false, true)
		c := newRedisCache(b)
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			var s string
			if found, err := c.Get(ctx, mgrKeys[i&mask], &s); !found || err != nil {
				b.Fatal("miss", err)
			}
			i++
		}
	})
	b.Run("impl=cachekit-getas", func(b *testing.B) {
		preloadRedis(b, false, true)
		c := newRedisCache(b)
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if _, found, err := cache.GetAs[string](ctx, c, mgrKeys[i&mask]); !found || err != nil {
				b.Fatal("miss", err)
			}
			i++
		}
	})
}

// BenchmarkRedisSet overwrites a present key with a string and a TTL: raw go-redis (SET
// EX) beside the manager (JSON encode, SET PX). The manager boxes the string into an
// any, one allocation the caller pays, counted here.
func BenchmarkRedisSet(b *testing.B) {
	b.Run("impl=go-redis", func(b *testing.B) {
		rdb := newRedisClient(b)
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if err := rdb.Set(ctx, rawKeys[i&mask], vals[i&mask], valueTTL).Err(); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("impl=cachekit", func(b *testing.B) {
		c := newRedisCache(b)
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if err := c.Set(ctx, mgrKeys[i&mask], vals[i&mask], valueTTL); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}

// The interleaved benchmarks below measure the same operations again, but take turns:
// every round runs each implementation once, in an order that rotates from round to
// round, and times each call on its own. On a shared, noisy machine the load changes
// from second to second, and the benchmarks above run each implementation's counts one
// after the other, so that a slow spell can land on one implementation alone; taking
// turns spreads it evenly, and the ratio between two implementations in one count is a
// paired measurement. Each reports, per implementation, the mean time of one call as
// the metric ns/<impl> (the built-in ns/op, a whole round, is suppressed). Allocations
// are those of a whole round: read them from the benchmarks above.

// timedOp is one implementation's call, for interleave.
type timedOp struct {
	impl string
	call func() error
}

// interleave runs ops in turns until the benchmark's time is up and reports the mean
// time of each.
//
// It also reports the CPU time of each call on the calling thread, as cpu-ns/<impl>
// (Linux only; see threadCPU): the client side's own cost, which the load of other
// processes moves much less than the wall time of a round trip.
func interleave(b *testing.B, ops []timedOp) {
	b.Helper()
	defer lockThread()()
	total := make([]time.Duration, len(ops))
	cpu := make([]time.Duration, len(ops))
	rounds := 0
	for b.Loop() {
		for j := range ops {
			k := (rounds + j) % len(ops)
			c0, _ := threadCPU()
			t := time.Now()
			if err := ops[k].call(); err != nil {
				b.Fatalf("%s: %v", ops[k].impl, err)
			}
			total[k] += time.Since(t)
			c1, _ := threadCPU()
			cpu[k] += c1 - c0
		}
		rounds++
	}
	reportInterleaved(b, ops, total, rounds)
	if _, ok := threadCPU(); ok && rounds > 0 {
		for k, op := range ops {
			b.ReportMetric(float64(cpu[k])/float64(rounds), "cpu-ns/"+op.impl)
		}
	}
}

func reportInterleaved(b *testing.B, ops []timedOp, total []time.Duration, calls int) {
	b.ReportMetric(0, "ns/op")
	for k, op := range ops {
		b.ReportMetric(float64(total[k])/float64(calls), "ns/"+op.impl)
	}
}

// BenchmarkRedisLockInterleaved is BenchmarkRedisLock taking turns.
func BenchmarkRedisLockInterleaved(b *testing.B) {
	var ops []timedOp
	for _, impl := range lockImpls {
		lock, key := newLocker(b, impl), redisScope+"ilock."+impl
		ops = append(ops, timedOp{impl, func() error { return lock(ctx, key) }})
	}
	b.ReportAllocs()
	interleave(b, ops)
}

// BenchmarkRedisLockParallelInterleaved is BenchmarkRedisLockParallel taking turns: each
// goroutine, on keys of its own, runs every implementation in turn. The metric is the
// mean latency of one call while GOMAXPROCS goroutines run, not the throughput.
func BenchmarkRedisLockParallelInterleaved(b *testing.B) {
	lockers := make([]locker, len(lockImpls))
	for k, impl := range lockImpls {
		lockers[k] = newLocker(b, impl)
	}
	ops := make([]timedOp, len(lockImpls))
	for k, impl := range lockImpls {
		ops[k].impl = impl
	}
	var (
		mu     sync.Mutex
		total  = make([]time.Duration, len(ops))
		rounds int
	)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		g := strconv.Itoa(start())
		keys := make([]string, len(lockImpls))
		for k, impl := range lockImpls {
			keys[k] = redisScope + "iplock." + impl + "." + g
		}
		mine := make([]time.Duration, len(ops))
		r := 0
		for pb.Next() {
			for j := range lockers {
				k := (r + j) % len(lockers)
				t := time.Now()
				if err := lockers[k](ctx, keys[k]); err != nil {
					b.Errorf("%s: %v", lockImpls[k], err)
					return
				}
				mine[k] += time.Since(t)
			}
			r++
		}
		mu.Lock()
		for k := range total {
			total[k] += mine[k]
		}
		rounds += r
		mu.Unlock()
	})
	if rounds > 0 {
		reportInterleaved(b, ops, total, rounds)
	}
}

// BenchmarkRedisGetHitInterleaved is BenchmarkRedisGetHit taking turns.
func BenchmarkRedisGetHitInterleaved(b *testing.B) {
	preloadRedis(b, true, true)
	rdb, c, cg := newRedisClient(b), newRedisCache(b), newRedisCache(b)
	i, j, k := 0, 0, 0
	b.ReportAllocs()
	interleave(b, []timedOp{
		{"go-redis", func() error {
			i++
			return rdb.Get(ctx, rawKeys[i&mask]).Err()
		}},
		{"cachekit", func() error {
			j++
			var s string
			found, err := c.Get(ctx, mgrKeys[j&mask], &s)
			if err == nil && !found {
				err = errMiss
			}
			return err
		}},
		{"cachekit-getas", func() error {
			k++
			_, found, err := cache.GetAs[string](ctx, cg, mgrKeys[k&mask])
			if err == nil && !found {
				err = errMiss
			}
			return err
		}},
	})
}

var errMiss = errors.New("miss")

// BenchmarkRedisSetInterleaved is BenchmarkRedisSet taking turns.
func BenchmarkRedisSetInterleaved(b *testing.B) {
	rdb, c := newRedisClient(b), newRedisCache(b)
	i, j := 0, 0
	b.ReportAllocs()
	interleave(b, []timedOp{
		{"go-redis", func() error {
			i++
			return rdb.Set(ctx, rawKeys[i&mask], vals[i&mask], valueTTL).Err()
		}},
		{"cachekit", func() error {
			j++
			return c.Set(ctx, mgrKeys[j&mask], vals[j&mask], valueTTL)
		}},
	})
}
