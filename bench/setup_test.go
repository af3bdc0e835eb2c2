package bench

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/dgraph-io/ristretto/v2"
	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/maypok86/otter/v2"

	"github.com/cachekit/cache"
	"github.com/cachekit/cache/drivers/lrucache"
	"github.com/cachekit/cache/drivers/memorycache"
)

// numKeys is the number of keys every benchmark preloads and then reads or overwrites,
// round robin. It is a power of two so that i&mask picks a key without a division.
const (
	numKeys = 1024
	mask    = numKeys - 1
)

// keys and vals are shared by every implementation, so that all of them hash the same
// strings and store the same values.
var keys, vals = func() ([]string, []string) {
	k := make([]string, numKeys)
	v := make([]string, numKeys)
	for i := range k {
		k[i] = fmt.Sprintf("user.%04d", i)
		v[i] = fmt.Sprintf("value of user %04d", i)
	}
	return k, v
}()

// newRistretto returns a ristretto cache holding every key. Its bound is far above
// numKeys, so that admission never refuses a preloaded key.
func newRistretto(tb testing.TB) *ristretto.Cache[string, string] {
	tb.Helper()
	r, err := ristretto.NewCache(&ristretto.Config[string, string]{
		NumCounters:        10 * numKeys,
		MaxCost:            100 * numKeys,
		BufferItems:        64,
		IgnoreInternalCost: true,
	})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(r.Close)
	// Writes are buffered and a full buffer drops them: write again until every key
	// reads back.
	for range 10 {
		missing := 0
		for i, k := range keys {
			if _, ok := r.Get(k); !ok {
				missing++
				r.Set(k, vals[i], 1)
			}
		}
		if missing == 0 {
			return r
		}
		r.Wait()
	}
	tb.Fatal("ristretto: preloaded keys do not all read back")
	return nil
}

// newOtter returns an unbounded otter cache holding every key, with no expiry: the
// fastest configuration of the library.
func newOtter(tb testing.TB) *otter.Cache[string, string] {
	tb.Helper()
	return preloadOtter(tb, &otter.Options[string, string]{})
}

// newOtterTTL is newOtter with a TTL per entry, set the cheapest way otter offers:
// otter.ExpiryWritingFunc, whose reads never call the calculator. Reading the clock on
// every Get is what per-entry expiry costs inside otter.
func newOtterTTL(tb testing.TB) *otter.Cache[string, string] {
	tb.Helper()
	return preloadOtter(tb, &otter.Options[string, string]{
		ExpiryCalculator: otter.ExpiryWritingFunc(func(otter.Entry[string, string]) time.Duration {
			return time.Hour
		}),
	})
}

// readExpiry is an otter expiry calculator of its own type with a TTL per entry, which
// keeps the deadline on a read. otter cannot tell that its ExpireAfterRead keeps the
// deadline, so it calls it on every hit and reads the clock a second time. memorycache
// used this shape until it moved to otter.ExpiryWritingFunc (commit 99f9b88); its
// sliding behaviour (memoryExtended) still does, since it moves the deadline on a read.
type readExpiry struct{}

func (readExpiry) ExpireAfterCreate(otter.Entry[string, string]) time.Duration {
	return time.Hour
}

func (readExpiry) ExpireAfterUpdate(otter.Entry[string, string], string) time.Duration {
	return time.Hour
}

func (readExpiry) ExpireAfterRead(e otter.Entry[string, string]) time.Duration {
	return e.ExpiresAfter()
}

// newOtterTTLOnRead is newOtterTTL with a calculator of the library's own type.
func newOtterTTLOnRead(tb testing.TB) *otter.Cache[string, string] {
	tb.Helper()
	return preloadOtter(tb, &otter.Options[string, string]{ExpiryCalculator: readExpiry{}})
}

func preloadOtter(tb testing.TB, o *otter.Options[string, string]) *otter.Cache[string, string] {
	tb.Helper()
	c := otter.Must(o)
	tb.Cleanup(func() { c.StopAllGoroutines() })
	for i, k := range keys {
		c.Set(k, vals[i])
	}
	return c
}

// newLRU returns golang-lru's thread-safe cache holding every key.
func newLRU(tb testing.TB) *lru.Cache[string, string] {
	tb.Helper()
	l, err := lru.New[string, string](2 * numKeys)
	if err != nil {
		tb.Fatal(err)
	}
	for i, k := range keys {
		l.Add(k, vals[i])
	}
	return l
}

// newManager returns a cache.Cache over d, with every key preloaded through it.
func newManager(tb testing.TB, d cache.Driver, prefix string) *cache.Cache {
	tb.Helper()
	c, err := cache.New(cache.Config{Drivers: map[string]cache.Driver{"d": d}, Prefix: prefix})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })
	ctx := context.Background()
	for i, k := range keys {
		if err := c.Set(ctx, k, vals[i], 0); err != nil {
			tb.Fatal(err)
		}
	}
	return c
}

// newMemory returns the manager over the memory driver (unbounded, no default TTL).
func newMemory(tb testing.TB, prefix string) *cache.Cache {
	tb.Helper()
	d, err := memorycache.New(memorycache.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	return newManager(tb, d, prefix)
}

// newLRUDriver returns the manager over the lru driver, large enough for every key.
func newLRUDriver(tb testing.TB) *cache.Cache {
	tb.Helper()
	d, err := lrucache.New(lrucache.Options{Capacity: 2 * numKeys})
	if err != nil {
		tb.Fatal(err)
	}
	return newManager(tb, d, "")
}

// TestSetup checks that every implementation the benchmarks use starts with every key,
// so that a Get benchmark measures hits only.
func TestSetup(t *testing.T) {
	ctx := context.Background()
	r, l := newRistretto(t), newLRU(t)
	otters := map[string]*otter.Cache[string, string]{
		"otter":            newOtter(t),
		"otter-ttl":        newOtterTTL(t),
		"otter-ttl-onread": newOtterTTLOnRead(t),
	}
	managers := map[string]*cache.Cache{
		"cachekit-memory":        newMemory(t, ""),
		"cachekit-memory-prefix": newMemory(t, "app"),
		"cachekit-lru":           newLRUDriver(t),
	}
	for i, k := range keys {
		want := vals[i]
		if got, ok := r.Get(k); !ok || got != want {
			t.Fatalf("ristretto Get(%q) = %q, %v; want %q, true", k, got, ok, want)
		}
		for name, o := range otters {
			if got, ok := o.GetIfPresent(k); !ok || got != want {
				t.Fatalf("%s GetIfPresent(%q) = %q, %v; want %q, true", name, k, got, ok, want)
			}
		}
		if got, ok := l.Get(k); !ok || got != want {
			t.Fatalf("golang-lru Get(%q) = %q, %v; want %q, true", k, got, ok, want)
		}
		for name, c := range managers {
			var got string
			if found, err := c.Get(ctx, k, &got); err != nil || !found || got != want {
				t.Fatalf("%s Get(%q) = %q, %v, %v; want %q, true, nil", name, k, got, found, err, want)
			}
		}
	}
}
