package bench

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cachekit/cache"
)

// The benchmarks below compare, on the same 1024 preloaded keys and string values, the
// raw libraries (ristretto v2, otter v2, golang-lru v2) and cachekit's manager over its
// in-process drivers. Sub-benchmarks are named impl=NAME so that
// `benchstat -col /impl` puts the implementations side by side.
//
// Every loop is written out by hand, with no closure between the loop and the call it
// measures, so that no implementation pays an indirect call the others do not.
//
// impl names:
//
//	ristretto               ristretto.Cache[string, string], cost 1, bound far above 1024
//	otter                   otter.Cache[string, string], unbounded, no expiry
//	otter-ttl               the same with a TTL per entry, set with otter.ExpiryWritingFunc
//	otter-ttl-onread        the same with a calculator of its own type, which otter calls on every read
//	golang-lru              lru.Cache[string, string] (the thread-safe one), size 2048
//	cachekit-memory         cache.New over memorycache (otter v2), no prefix
//	cachekit-memory-prefix  the same with Config.Prefix "app": every key is joined to "app."
//	cachekit-lru            cache.New over lrucache (golang-lru's simplelru under one mutex)
//	cachekit-memory-getas   cachekit-memory read with cache.GetAs[string] instead of c.Get

var ctx = context.Background()

// startIndex spreads the parallel goroutines over the keys.
var startIndex atomic.Int64

func start() int { return int(startIndex.Add(1)) * 257 }

// BenchmarkGetHit reads a present key. The manager reads into a *string declared per
// call, as a caller would write it.
func BenchmarkGetHit(b *testing.B) {
	b.Run("impl=ristretto", func(b *testing.B) {
		r := newRistretto(b)
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if _, ok := r.Get(keys[i&mask]); !ok {
				b.Fatal("miss")
			}
			i++
		}
	})
	b.Run("impl=otter", func(b *testing.B) {
		o := newOtter(b)
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if _, ok := o.GetIfPresent(keys[i&mask]); !ok {
				b.Fatal("miss")
			}
			i++
		}
	})
	b.Run("impl=otter-ttl", func(b *testing.B) {
		o := newOtterTTL(b)
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if _, ok := o.GetIfPresent(keys[i&mask]); !ok {
				b.Fatal("miss")
			}
			i++
		}
	})
	b.Run("impl=otter-ttl-onread", func(b *testing.B) {
		o := newOtterTTLOnRead(b)
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if _, ok := o.GetIfPresent(keys[i&mask]); !ok {
				b.Fatal("miss")
			}
			i++
		}
	})
	b.Run("impl=golang-lru", func(b *testing.B) {
		l := newLRU(b)
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if _, ok := l.Get(keys[i&mask]); !ok {
				b.Fatal("miss")
			}
			i++
		}
	})
	managerGet := func(b *testing.B, c *cache.Cache) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			var s string
			if found, err := c.Get(ctx, keys[i&mask], &s); !found || err != nil {
				b.Fatal("miss", err)
			}
			i++
		}
	}
	b.Run("impl=cachekit-memory", func(b *testing.B) { managerGet(b, newMemory(b, "")) })
	b.Run("impl=cachekit-memory-prefix", func(b *testing.B) { managerGet(b, newMemory(b, "app")) })
	b.Run("impl=cachekit-lru", func(b *testing.B) { managerGet(b, newLRUDriver(b)) })
	b.Run("impl=cachekit-memory-getas", func(b *testing.B) {
		c := newMemory(b, "")
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if _, found, err := cache.GetAs[string](ctx, c, keys[i&mask]); !found || err != nil {
				b.Fatal("miss", err)
			}
			i++
		}
	})
}

// BenchmarkGetHitParallel is BenchmarkGetHit from GOMAXPROCS goroutines at once.
func BenchmarkGetHitParallel(b *testing.B) {
	b.Run("impl=ristretto", func(b *testing.B) {
		r := newRistretto(b)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for i := start(); pb.Next(); i++ {
				if _, ok := r.Get(keys[i&mask]); !ok {
					b.Error("miss")
					return
				}
			}
		})
	})
	b.Run("impl=otter", func(b *testing.B) {
		o := newOtter(b)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for i := start(); pb.Next(); i++ {
				if _, ok := o.GetIfPresent(keys[i&mask]); !ok {
					b.Error("miss")
					return
				}
			}
		})
	})
	b.Run("impl=otter-ttl", func(b *testing.B) {
		o := newOtterTTL(b)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for i := start(); pb.Next(); i++ {
				if _, ok := o.GetIfPresent(keys[i&mask]); !ok {
					b.Error("miss")
					return
				}
			}
		})
	})
	b.Run("impl=otter-ttl-onread", func(b *testing.B) {
		o := newOtterTTLOnRead(b)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for i := start(); pb.Next(); i++ {
				if _, ok := o.GetIfPresent(keys[i&mask]); !ok {
					b.Error("miss")
					return
				}
			}
		})
	})
	b.Run("impl=golang-lru", func(b *testing.B) {
		l := newLRU(b)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for i := start(); pb.Next(); i++ {
				if _, ok := l.Get(keys[i&mask]); !ok {
					b.Error("miss")
					return
				}
			}
		})
	})
	managerGet := func(b *testing.B, c *cache.Cache) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for i := start(); pb.Next(); i++ {
				var s string
				if found, err := c.Get(ctx, keys[i&mask], &s); !found || err != nil {
					b.Error("miss", err)
					return
				}
			}
		})
	}
	b.Run("impl=cachekit-memory", func(b *testing.B) { managerGet(b, newMemory(b, "")) })
	b.Run("impl=cachekit-memory-prefix", func(b *testing.B) { managerGet(b, newMemory(b, "app")) })
	b.Run("impl=cachekit-lru", func(b *testing.B) { managerGet(b, newLRUDriver(b)) })
	b.Run("impl=cachekit-memory-getas", func(b *testing.B) {
		c := newMemory(b, "")
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for i := start(); pb.Next(); i++ {
				if _, found, err := cache.GetAs[string](ctx, c, keys[i&mask]); !found || err != nil {
					b.Error("miss", err)
					return
				}
			}
		})
	})
}

// BenchmarkSet overwrites a present key with a string value. The manager takes the value
// as an any, so a string that is not a constant is boxed on every call: that allocation
// is the caller's and is counted here, as a caller would pay it.
func BenchmarkSet(b *testing.B) {
	b.Run("impl=ristretto", func(b *testing.B) {
		r := newRistretto(b)
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			r.Set(keys[i&mask], vals[i&mask], 1)
			i++
		}
	})
	b.Run("impl=otter", func(b *testing.B) {
		o := newOtter(b)
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			o.Set(keys[i&mask], vals[i&mask])
			i++
		}
	})
	b.Run("impl=otter-ttl", func(b *testing.B) {
		o := newOtterTTL(b)
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			o.Set(keys[i&mask], vals[i&mask])
			i++
		}
	})
	b.Run("impl=otter-ttl-onread", func(b *testing.B) {
		o := newOtterTTLOnRead(b)
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			o.Set(keys[i&mask], vals[i&mask])
			i++
		}
	})
	b.Run("impl=golang-lru", func(b *testing.B) {
		l := newLRU(b)
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			l.Add(keys[i&mask], vals[i&mask])
			i++
		}
	})
	managerSet := func(b *testing.B, c *cache.Cache) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if err := c.Set(ctx, keys[i&mask], vals[i&mask], 0); err != nil {
				b.Fatal(err)
			}
			i++
		}
	}
	b.Run("impl=cachekit-memory", func(b *testing.B) { managerSet(b, newMemory(b, "")) })
	b.Run("impl=cachekit-memory-prefix", func(b *testing.B) { managerSet(b, newMemory(b, "app")) })
	b.Run("impl=cachekit-lru", func(b *testing.B) { managerSet(b, newLRUDriver(b)) })
}

// BenchmarkSetParallel is BenchmarkSet from GOMAXPROCS goroutines at once.
func BenchmarkSetParallel(b *testing.B) {
	b.Run("impl=ristretto", func(b *testing.B) {
		r := newRistretto(b)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for i := start(); pb.Next(); i++ {
				r.Set(keys[i&mask], vals[i&mask], 1)
			}
		})
	})
	b.Run("impl=otter", func(b *testing.B) {
		o := newOtter(b)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for i := start(); pb.Next(); i++ {
				o.Set(keys[i&mask], vals[i&mask])
			}
		})
	})
	b.Run("impl=otter-ttl", func(b *testing.B) {
		o := newOtterTTL(b)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for i := start(); pb.Next(); i++ {
				o.Set(keys[i&mask], vals[i&mask])
			}
		})
	})
	b.Run("impl=otter-ttl-onread", func(b *testing.B) {
		o := newOtterTTLOnRead(b)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for i := start(); pb.Next(); i++ {
				o.Set(keys[i&mask], vals[i&mask])
			}
		})
	})
	b.Run("impl=golang-lru", func(b *testing.B) {
		l := newLRU(b)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for i := start(); pb.Next(); i++ {
				l.Add(keys[i&mask], vals[i&mask])
			}
		})
	})
	managerSet := func(b *testing.B, c *cache.Cache) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for i := start(); pb.Next(); i++ {
				if err := c.Set(ctx, keys[i&mask], vals[i&mask], 0); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	b.Run("impl=cachekit-memory", func(b *testing.B) { managerSet(b, newMemory(b, "")) })
	b.Run("impl=cachekit-memory-prefix", func(b *testing.B) { managerSet(b, newMemory(b, "app")) })
	b.Run("impl=cachekit-lru", func(b *testing.B) { managerSet(b, newLRUDriver(b)) })
}

// load is Remember's loader. On a hit it must never run; ran counts the calls that
// would show a miss.
var ran atomic.Int64

func load(context.Context) (string, error) {
	ran.Add(1)
	return "loaded", nil
}

// BenchmarkRememberHit is cache.Remember on a present key: one read, no load.
func BenchmarkRememberHit(b *testing.B) {
	bench := func(b *testing.B, c *cache.Cache) {
		ran.Store(0)
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if _, err := cache.Remember(ctx, c, keys[i&mask], 0, load); err != nil {
				b.Fatal(err)
			}
			i++
		}
		if n := ran.Load(); n != 0 {
			b.Fatalf("the loader ran %d times on a hit", n)
		}
	}
	b.Run("impl=cachekit-memory", func(b *testing.B) { bench(b, newMemory(b, "")) })
	b.Run("impl=cachekit-memory-prefix", func(b *testing.B) { bench(b, newMemory(b, "app")) })
}

// BenchmarkRememberHitParallel is BenchmarkRememberHit from GOMAXPROCS goroutines.
func BenchmarkRememberHitParallel(b *testing.B) {
	bench := func(b *testing.B, c *cache.Cache) {
		ran.Store(0)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for i := start(); pb.Next(); i++ {
				if _, err := cache.Remember(ctx, c, keys[i&mask], 0, load); err != nil {
					b.Error(err)
					return
				}
			}
		})
		if n := ran.Load(); n != 0 {
			b.Fatalf("the loader ran %d times on a hit", n)
		}
	}
	b.Run("impl=cachekit-memory", func(b *testing.B) { bench(b, newMemory(b, "")) })
	b.Run("impl=cachekit-memory-prefix", func(b *testing.B) { bench(b, newMemory(b, "app")) })
}

func work(context.Context) (struct{}, error) { return struct{}{}, nil }

// BenchmarkLock is an uncontended cache.Lock: acquire, run an empty fn, release.
func BenchmarkLock(b *testing.B) {
	b.Run("impl=cachekit-memory", func(b *testing.B) {
		c := newMemory(b, "")
		b.ReportAllocs()
		for b.Loop() {
			out, err := cache.Lock(ctx, c, "lock.bench", time.Minute, work)
			if err != nil || !out.Acquired {
				b.Fatal("not acquired", err)
			}
		}
	})
}

// BenchmarkLockParallel is BenchmarkLock from GOMAXPROCS goroutines, each on a key of
// its own: still uncontended, but the goroutines share the driver.
func BenchmarkLockParallel(b *testing.B) {
	b.Run("impl=cachekit-memory", func(b *testing.B) {
		c := newMemory(b, "")
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			key := "lock.bench." + strconv.Itoa(start())
			for pb.Next() {
				out, err := cache.Lock(ctx, c, key, time.Minute, work)
				if err != nil || !out.Acquired {
					b.Error("not acquired", err)
					return
				}
			}
		})
	})
}
