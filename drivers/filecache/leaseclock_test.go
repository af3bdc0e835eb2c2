package filecache_test

import (
	"testing"

	"github.com/cachekit/cache/driver"
	"github.com/cachekit/cache/drivers/filecache"
	"github.com/cachekit/cache/drivertest"
)

// fileLease has every holder in a process of its own, on one cache directory.
var fileLease = drivertest.LeaseTarget{
	Open:         func(dir string) (driver.Driver, error) { return filecache.New(filecache.Options{Dir: dir}) },
	Store:        func(t *testing.T) string { return t.TempDir() },
	CrossProcess: true,
}

// The holders and the busy processes of TestLeaseOverlap are this test binary, run
// again: this runs their job, before TestMain.
func init() { drivertest.LeaseMain(fileLease) }

// TestLeaseOverlap: 4 holder processes following the lease protocol beside 3 busy
// processes, at TTL 5 ms and 20 ms, never overlap (see drivertest.LeaseOverlap).
func TestLeaseOverlap(t *testing.T) { drivertest.LeaseOverlap(t, fileLease) }
