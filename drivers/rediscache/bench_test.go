package rediscache_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cachekit/cache"
	"github.com/cachekit/cache/driver"
	"github.com/cachekit/cache/drivers/rediscache"
	"github.com/cachekit/cache/internal/testkit/redistest"
)

// The driver's own benchmarks against the local redis-server: the lock path through the
// manager next to the raw floor of a lock (SET NX PX + DEL through go-redis, two round
// trips), and the driver's primitives. bench/ compares with other libraries.

func benchClient(b *testing.B) (*rediscache.Driver, *cache.Cache) {
	d, err := rediscache.New(rediscache.Options{URL: redistest.URL(b)})
	if err != nil {
		b.Fatal(err)
	}
	c, err := cache.New(cache.Config{Drivers: map[string]cache.Driver{"redis": d}, Prefix: scope("bench")})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = c.Close() })
	return d, c
}

func BenchmarkLock(b *testing.B) {
	ctx := context.Background()
	_, c := benchClient(b)
	fn := func(context.Context) (struct{}, error) { return struct{}{}, nil }
	b.ReportAllocs()
	for b.Loop() {
		if out, err := cache.Lock(ctx, c, "lock.bench", time.Minute, fn); err != nil || !out.Acquired {
			b.Fatal(out, err)
		}
	}
}

func BenchmarkRawSetNXDel(b *testing.B) {
	ctx := context.Background()
	d, _ := benchClient(b)
	rdb := d.Client()
	k := scope("raw")
	b.ReportAllocs()
	for b.Loop() {
		if ok, err := rdb.SetNX(ctx, k, "token", time.Minute).Result(); err != nil || !ok {
			b.Fatal(ok, err)
		}
		if err := rdb.Del(ctx, k).Err(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDriverSetIfCompareAndDelete(b *testing.B) {
	ctx := context.Background()
	d, _ := benchClient(b)
	k := scope("drv")
	tok := []byte(`"pid.1#ABCDEFGHIJKLMNOPQRSTUVWXYZ"`)
	e := driver.Entry{Key: k, Value: tok, TTL: time.Minute}
	b.ReportAllocs()
	for b.Loop() {
		if ok, err := d.SetIf(ctx, e, driver.IfAbsent); err != nil || !ok {
			b.Fatal(ok, err)
		}
		if ok, err := d.CompareAndDelete(ctx, k, tok); err != nil || !ok {
			b.Fatal(ok, err)
		}
	}
}

func BenchmarkGet(b *testing.B) {
	ctx := context.Background()
	d, c := benchClient(b)
	if err := c.Set(ctx, "k", "value", time.Minute); err != nil {
		b.Fatal(err)
	}
	b.Run("cache", func(b *testing.B) {
		b.ReportAllocs()
		var s string
		for b.Loop() {
			if _, err := c.Get(ctx, "k", &s); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("raw", func(b *testing.B) {
		rdb := d.Client()
		k := scope("rawget")
		rdb.Set(ctx, k, "value", time.Minute)
		b.ReportAllocs()
		for b.Loop() {
			if err := rdb.Get(ctx, k).Err(); err != nil && err != redis.Nil {
				b.Fatal(err)
			}
		}
	})
}
