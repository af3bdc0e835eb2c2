package nullcache_test

import (
	"testing"

	"github.com/cachekit/cache/driver"
	"github.com/cachekit/cache/drivers/nullcache"
	"github.com/cachekit/cache/drivertest"
)

func TestConformance(t *testing.T) {
	drivertest.RunWith(t, drivertest.Harness{
		New: func(t *testing.T) driver.Driver {
			d, err := nullcache.New(nullcache.Options{})
			if err != nil {
				t.Fatal(err)
			}
			return d
		},
		StoresNothing: true,
	})
}
