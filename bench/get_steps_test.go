package bench

import (
	"testing"
	"time"

	"github.com/maypok86/otter/v2"

	"github.com/cachekit/cache"
	"github.com/cachekit/cache/driver"
	"github.com/cachekit/cache/drivers/memorycache"
)

// BenchmarkGetSteps takes the manager's Get hit apart, one layer at a time, on the
// same 1024 keys:
//
//	otter             otter.Cache GetIfPresent, unbounded, no expiry (GetHit's baseline)
//	otter-coarse-ttl  the same with a TTL per entry (otter.ExpiryWritingFunc) read
//	                  against otter's 1 ms CoarseClock: the cost of memorycache's
//	                  expiry. memorycache has a coarse clock of its own (1 ms, one
//	                  atomic load per read, like otter's), which it also brings to the
//	                  exact time before every write of a lock entry; otter's stands in
//	                  for it here, as memorycache's is not exported
//	driver            memorycache.Driver.Get, called on the concrete type
//	driver-iface      the same through a driver.Driver interface value
//	getas             cache.GetAs[string] over the driver (no prefix)
//	get               c.Get(ctx, key, &s)
//	getas-prefix      cache.GetAs[string] with Config.Prefix "app"
//	get-prefix        c.Get with Config.Prefix "app"
func BenchmarkGetSteps(b *testing.B) {
	for _, par := range []bool{false, true} {
		name := "serial"
		if par {
			name = "parallel"
		}
		b.Run(name, func(b *testing.B) { getSteps(b, par) })
	}
}

func getSteps(b *testing.B, par bool) {
	// loop runs get over the keys, serially or from GOMAXPROCS goroutines.
	loop := func(b *testing.B, get func(i int) bool) {
		b.ReportAllocs()
		if !par {
			i := 0
			for b.Loop() {
				if !get(i) {
					b.Fatal("miss")
				}
				i++
			}
			return
		}
		b.RunParallel(func(pb *testing.PB) {
			for i := start(); pb.Next(); i++ {
				if !get(i) {
					b.Error("miss")
					return
				}
			}
		})
	}
	b.Run("impl=otter", func(b *testing.B) {
		o := newOtter(b)
		loop(b, func(i int) bool { _, ok := o.GetIfPresent(keys[i&mask]); return ok })
	})
	b.Run("impl=otter-coarse-ttl", func(b *testing.B) {
		clock := otter.NewCoarseClock(time.Millisecond)
		b.Cleanup(clock.Stop)
		o := preloadOtter(b, &otter.Options[string, string]{
			ExpiryCalculator: otter.ExpiryWritingFunc(func(otter.Entry[string, string]) time.Duration { return time.Hour }),
			Clock:            clock,
		})
		loop(b, func(i int) bool { _, ok := o.GetIfPresent(keys[i&mask]); return ok })
	})
	b.Run("impl=driver", func(b *testing.B) {
		d := newMemoryDriver(b)
		loop(b, func(i int) bool { _, ok, _ := d.Get(ctx, keys[i&mask]); return ok })
	})
	b.Run("impl=driver-iface", func(b *testing.B) {
		var d driver.Driver = newMemoryDriver(b)
		loop(b, func(i int) bool { _, ok, _ := d.Get(ctx, keys[i&mask]); return ok })
	})
	for _, prefix := range []string{"", "app"} {
		suffix := ""
		if prefix != "" {
			suffix = "-prefix"
		}
		b.Run("impl=getas"+suffix, func(b *testing.B) {
			c := newMemory(b, prefix)
			loop(b, func(i int) bool { _, ok, _ := cache.GetAs[string](ctx, c, keys[i&mask]); return ok })
		})
		b.Run("impl=get"+suffix, func(b *testing.B) {
			c := newMemory(b, prefix)
			loop(b, func(i int) bool {
				var s string
				ok, _ := c.Get(ctx, keys[i&mask], &s)
				return ok
			})
		})
	}
}

// newMemoryDriver is the memory driver holding the keys, without a manager.
func newMemoryDriver(tb testing.TB) *memorycache.Driver {
	tb.Helper()
	d, err := memorycache.New(memorycache.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = d.Close() })
	for i, k := range keys {
		if err := d.Set(ctx, driver.Entry{Key: k, Value: vals[i]}); err != nil {
			tb.Fatal(err)
		}
	}
	return d
}
