package lrucache_test

import (
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
