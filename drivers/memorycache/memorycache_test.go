package memorycache_test

import (
	"testing"
	"time"

	"github.com/cachekit/cache/driver"
	"github.com/cachekit/cache/drivers/memorycache"
	"github.com/cachekit/cache/drivertest"
)

func harness(o memorycache.Options) drivertest.Harness {
	newDriver := func(t *testing.T, o memorycache.Options) driver.Driver {
		d, err := memorycache.New(o)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = d.Close() })
		return d
	}
	return drivertest.Harness{
		New: func(t *testing.T) driver.Driver { return newDriver(t, o) },
		NewWithDefaultTTL: func(t *testing.T, ttl time.Duration) driver.Driver {
			o := o
			o.DefaultTTL = ttl
			return newDriver(t, o)
		},
	}
}

func TestConformance(t *testing.T) {
	t.Run("memory", func(t *testing.T) { drivertest.RunWith(t, harness(memorycache.Options{})) })
	t.Run("memoryExtended", func(t *testing.T) { drivertest.RunWith(t, harness(memorycache.Options{Sliding: true})) })
	t.Run("bounded", func(t *testing.T) { drivertest.RunWith(t, harness(memorycache.Options{MaxItems: 100_000})) })
	t.Run("boundedBytes", func(t *testing.T) { drivertest.RunWith(t, harness(memorycache.Options{MaxBytes: 64 << 20})) })
}
