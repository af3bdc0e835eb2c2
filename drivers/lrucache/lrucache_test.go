package lrucache_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/cachekit/cache/driver"
	"github.com/cachekit/cache/drivers/lrucache"
	"github.com/cachekit/cache/drivertest"
)

func newDriver(t *testing.T, o lrucache.Options) *lrucache.Driver {
	t.Helper()
	d, err := lrucache.New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	return d
}

func TestConformance(t *testing.T) {
	drivertest.RunWith(t, drivertest.Harness{
		New: func(t *testing.T) driver.Driver { return newDriver(t, lrucache.Options{}) },
		NewWithDefaultTTL: func(t *testing.T, ttl time.Duration) driver.Driver {
			return newDriver(t, lrucache.Options{DefaultTTL: ttl})
		},
	})
}

func TestCapacityEvictsLeastRecentlyUsed(t *testing.T) {
	d := newDriver(t, lrucache.Options{Capacity: 3})
	ctx := context.Background()
	for _, k := range []string{"a", "b", "c"} {
		_ = d.Set(ctx, driver.Entry{Key: k, Value: k})
	}
	_, _, _ = d.Get(ctx, "a") // a is now the most recent; b the least
	_ = d.Set(ctx, driver.Entry{Key: "d", Value: "d"})
	for k, want := range map[string]bool{"a": true, "b": false, "c": true, "d": true} {
		if _, found, _ := d.Get(ctx, k); found != want {
			t.Errorf("Get(%q) found = %v; want %v", k, found, want)
		}
	}
	if n := d.Len(); n != 3 {
		t.Fatalf("Len() = %d; want 3", n)
	}
}

func TestDefaultCapacity(t *testing.T) {
	d := newDriver(t, lrucache.Options{})
	ctx := context.Background()
	for i := range 2 * lrucache.DefaultCapacity {
		_ = d.Set(ctx, driver.Entry{Key: fmt.Sprint(i), Value: i})
	}
	if n := d.Len(); n != lrucache.DefaultCapacity {
		t.Fatalf("Len() = %d; want %d", n, lrucache.DefaultCapacity)
	}
}

func TestTTLWithFakeClock(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	d := newDriver(t, lrucache.Options{Now: func() time.Time { return now }})
	ctx := context.Background()
	_ = d.Set(ctx, driver.Entry{Key: "k", Value: 1, TTL: time.Minute})
	_, _ = d.Increment(ctx, "n", 1, time.Minute)
	now = now.Add(59 * time.Second)
	if _, found, _ := d.Get(ctx, "k"); !found {
		t.Fatal("expired before its TTL")
	}
	if n, _ := d.Increment(ctx, "n", 1, time.Hour); n != 2 {
		t.Fatalf("Increment = %d; want 2", n)
	}
	now = now.Add(time.Second)
	if _, found, _ := d.Get(ctx, "k"); found {
		t.Fatal("alive at its TTL")
	}
	if _, found, _ := d.Get(ctx, "n"); found {
		t.Fatal("Increment renewed the counter's TTL")
	}
}

func TestBadOptions(t *testing.T) {
	for _, o := range []lrucache.Options{{Capacity: -1}, {DefaultTTL: -time.Second}} {
		if _, err := lrucache.New(o); err == nil {
			t.Errorf("New(%+v) = nil error", o)
		}
	}
}
