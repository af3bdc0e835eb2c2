package pgcache_test

import (
	"testing"
	"time"

	"github.com/cachekit/cache/driver"
	"github.com/cachekit/cache/drivers/pgcache"
	"github.com/cachekit/cache/drivertest"
	"github.com/cachekit/cache/internal/pgtest"
)

// TestConformance runs the driver conformance suite on a PostgreSQL, with the default
// table, and with an UNLOGGED table of its own in a schema of its own. There is no
// Harness.Plant: a row of the table is always bytes, so the driver cannot hold data of
// another kind under a key; bytes that the codec cannot read are a decoding error of
// the manager's (TestUndecodableBytes).
func TestConformance(t *testing.T) {
	url := pgtest.URL(t) // start the server (or skip) before the suite's cases
	t.Run("logged", func(t *testing.T) {
		drivertest.RunWith(t, drivertest.Harness{
			New:               harness,
			NewWithDefaultTTL: harnessWithTTL,
		})
	})
	t.Run("unlogged", func(t *testing.T) {
		exec(t, url, `CREATE SCHEMA IF NOT EXISTS cachekit_test`)
		o := pgcache.Options{URL: url, Table: "cachekit_test.unlogged_entries", Unlogged: true}
		drivertest.RunWith(t, drivertest.Harness{
			New: func(t *testing.T) driver.Driver { return newDriver(t, o) },
			NewWithDefaultTTL: func(t *testing.T, ttl time.Duration) driver.Driver {
				o := o
				o.DefaultTTL = ttl
				return newDriver(t, o)
			},
		})
	})
}
