package lrucache_test

import (
	"testing"

	"github.com/cachekit/cache/driver"
	"github.com/cachekit/cache/drivers/lrucache"
	"github.com/cachekit/cache/drivertest"
)

// lruLease opens an LRU driver with its default clock for the lease test.
var lruLease = drivertest.LeaseTarget{
	Open: func(string) (driver.Driver, error) { return lrucache.New(lrucache.Options{}) },
}

// The busy processes of TestLeaseOverlap are this test binary, run again.
func init() { drivertest.LeaseMain(lruLease) }

// TestLeaseOverlap: 4 holders following the lease protocol beside 3 busy processes, at
// TTL 5 ms and 20 ms, never overlap (see drivertest.LeaseOverlap).
func TestLeaseOverlap(t *testing.T) { drivertest.LeaseOverlap(t, lruLease) }
