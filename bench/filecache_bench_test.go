package bench

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/cachekit/cache"
	"github.com/cachekit/cache/drivers/filecache"
)

// The file driver through the manager, on a fresh directory under the test's temporary
// directory (os.TempDir: set TMPDIR to measure another file system). Every operation is
// real file I/O: a Get opens and reads one file, a Set writes a temporary file and
// renames it under an flock(2) stripe lock, a Lock is one Create and one
// compare-and-delete, both under the stripe lock. Names: sync=off is the default
// (no fsync), sync=on is Options.Sync.

// fcKeys are the keys the file benchmarks preload and then read or overwrite.
var fcKeys = func() []string {
	k := make([]string, 256)
	for i := range k {
		k[i] = fmt.Sprintf("user.%04d", i)
	}
	return k
}()

const fcValue = "value of a user, about forty bytes long"

// newFilecache returns the manager over a file driver on a fresh directory, with every
// key of fcKeys preloaded.
func newFilecache(b *testing.B, sync bool) *cache.Cache {
	b.Helper()
	d, err := filecache.New(filecache.Options{Dir: b.TempDir(), Sync: sync, SweepInterval: -1})
	if err != nil {
		b.Fatal(err)
	}
	c, err := cache.New(cache.Config{Drivers: map[string]cache.Driver{"file": d}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = c.Close() })
	for _, k := range fcKeys {
		if err := c.Set(context.Background(), k, fcValue, 0); err != nil {
			b.Fatal(err)
		}
	}
	return c
}

// BenchmarkFilecacheGetHit reads a present key into a string: open, read, close, check,
// JSON decode.
func BenchmarkFilecacheGetHit(b *testing.B) {
	c := newFilecache(b, false)
	bctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		var s string
		if found, err := c.Get(bctx, fcKeys[i%len(fcKeys)], &s); !found || err != nil {
			b.Fatal("miss", err)
		}
		i++
	}
}

// BenchmarkFilecacheGetHitParallel is BenchmarkFilecacheGetHit from GOMAXPROCS
// goroutines: reads take no lock.
func BenchmarkFilecacheGetHitParallel(b *testing.B) {
	c := newFilecache(b, false)
	bctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			var s string
			if found, err := c.Get(bctx, fcKeys[i%len(fcKeys)], &s); !found || err != nil {
				b.Error("miss", err)
				return
			}
			i++
		}
	})
}

// BenchmarkFilecacheSet overwrites a present key with a TTL.
func BenchmarkFilecacheSet(b *testing.B) {
	for _, sync := range []bool{false, true} {
		b.Run(fmt.Sprintf("sync=%s", onOff(sync)), func(b *testing.B) {
			c := newFilecache(b, sync)
			bctx := context.Background()
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if err := c.Set(bctx, fcKeys[i%len(fcKeys)], fcValue, time.Hour); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

// BenchmarkFilecacheLock is an uncontended cache.Lock: acquire (Create), run an empty
// fn, release (compare-and-delete).
func BenchmarkFilecacheLock(b *testing.B) {
	c := newFilecache(b, false)
	bctx := context.Background()
	work := func(context.Context) (struct{}, error) { return struct{}{}, nil }
	b.ReportAllocs()
	for b.Loop() {
		out, err := cache.Lock(bctx, c, "lock.bench", time.Minute, work)
		if err != nil || !out.Acquired {
			b.Fatal("not acquired", err)
		}
	}
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}
