package filecache_test

import (
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/cachekit/cache/driver"
	"github.com/cachekit/cache/drivers/filecache"
	"github.com/cachekit/cache/drivertest"
)

func TestMain(m *testing.M) {
	if runHelper() {
		return
	}
	goleak.VerifyTestMain(m)
}

// newDriver opens a driver on a fresh directory (unless o.Dir is set) and closes it when
// the test ends.
func newDriver(t testing.TB, o filecache.Options) *filecache.Driver {
	t.Helper()
	if o.Dir == "" {
		o.Dir = t.TempDir()
	}
	if o.OnError == nil {
		o.OnError = func(err error) { t.Errorf("OnError: %v", err) }
	}
	d, err := filecache.New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	return d
}

func TestConformance(t *testing.T) {
	drivertest.RunWith(t, drivertest.Harness{
		New: func(t *testing.T) driver.Driver { return newDriver(t, filecache.Options{}) },
		NewWithDefaultTTL: func(t *testing.T, ttl time.Duration) driver.Driver {
			return newDriver(t, filecache.Options{DefaultTTL: ttl})
		},
	})
}
