package cache_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/cachekit/cache"
	"github.com/cachekit/cache/driver"
	"github.com/cachekit/cache/drivers/lrucache"
	"github.com/cachekit/cache/drivers/memorycache"
	"github.com/cachekit/cache/drivers/nullcache"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// newCache returns a cache with the in-process drivers registered as "memory",
// "memoryExtended", "lru" and "null", and "memory" current.
func newCache(t testing.TB, cfg cache.Config) *cache.Cache {
	t.Helper()
	mem, err := memorycache.New(memorycache.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ext, err := memorycache.New(memorycache.Options{Sliding: true})
	if err != nil {
		t.Fatal(err)
	}
	lru, err := lrucache.New(lrucache.Options{})
	if err != nil {
		t.Fatal(err)
	}
	null, err := nullcache.New(nullcache.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Drivers == nil {
		cfg.Drivers = map[string]cache.Driver{"memory": mem, "memoryExtended": ext, "lru": lru, "null": null}
		if cfg.Default == "" {
			cfg.Default = "memory"
		}
	} else {
		for _, d := range []cache.Driver{mem, ext, lru, null} {
			_ = d.Close()
		}
	}
	c, err := cache.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

var errDown = errors.New("flaky: store is down")

// flaky wraps the memory driver and fails every call while down is set: a store that
// went away.
type flaky struct {
	*memorycache.Driver
	down atomic.Bool
}

func newFlaky(t testing.TB) *flaky {
	d, err := memorycache.New(memorycache.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return &flaky{Driver: d}
}

func (f *flaky) err() error {
	if f.down.Load() {
		return errDown
	}
	return nil
}

func (f *flaky) Get(ctx context.Context, key string) (any, bool, error) {
	if err := f.err(); err != nil {
		return nil, false, err
	}
	return f.Driver.Get(ctx, key)
}

func (f *flaky) GetJoined(ctx context.Context, scope, key string) (any, bool, error) {
	return f.Get(ctx, scope+"."+key)
}

func (f *flaky) Set(ctx context.Context, e driver.Entry) error {
	if err := f.err(); err != nil {
		return err
	}
	return f.Driver.Set(ctx, e)
}

func (f *flaky) SetIf(ctx context.Context, e driver.Entry, c driver.Condition) (bool, error) {
	if err := f.err(); err != nil {
		return false, err
	}
	return f.Driver.SetIf(ctx, e, c)
}

func (f *flaky) CompareAndDelete(ctx context.Context, key string, old any) (bool, error) {
	if err := f.err(); err != nil {
		return false, err
	}
	return f.Driver.CompareAndDelete(ctx, key, old)
}

// hangAfter is the limit of every wait in these tests for something that takes
// microseconds to milliseconds (an event's delivery, a background refresh, a handoff):
// a hang detector, not a latency bound. Only a hang reaches it, however busy the machine;
// speed is measured by the benchmarks (see docs/benchmarks.md).
const hangAfter = time.Minute

// ctxT returns a context that ends after 2 × hangAfter, so that a call that hangs fails
// the test instead of the whole binary; cancelled when the test ends.
func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*hangAfter)
	t.Cleanup(cancel)
	return ctx
}

// bare hides every capability of a driver beyond driver.Driver, the bundles included.
type bare struct{ d driver.Driver }

func (b bare) Get(ctx context.Context, key string) (any, bool, error) { return b.d.Get(ctx, key) }
func (b bare) Set(ctx context.Context, e driver.Entry) error          { return b.d.Set(ctx, e) }
func (b bare) Delete(ctx context.Context, keys ...string) error       { return b.d.Delete(ctx, keys...) }
func (b bare) Close() error                                           { return b.d.Close() }
