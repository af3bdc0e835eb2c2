package pgcache_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cachekit/cache/driver"
	"github.com/cachekit/cache/drivers/pgcache"
	"github.com/cachekit/cache/drivertest"
	"github.com/cachekit/cache/internal/testkit/pgtest"
)

// TestConformance runs the driver conformance suite on a PostgreSQL, with the default
// table, and with an UNLOGGED table of its own in a schema of its own.
//
// Each case's driver is new, but runs on a pool that the cases share (Options.Pool,
// which the driver never closes), as the drivers of a running service share a warm
// pool: the suite's timing cases (a lock renewal gets 100 ms) then measure the driver,
// not the start of new PostgreSQL backends, which on a loaded 2-core machine with -race
// took from 30 to 860 ms a connection. Drivers that build their own pool from a URL are
// tested in driver_test.go.
//
// There is no Harness.Plant: a row of the table is always bytes, so the driver cannot
// hold data of another kind under a key; bytes that the codec cannot read are the
// manager's decoding error, never a miss (TestUndecodableBytes).
func TestConformance(t *testing.T) {
	url := pgtest.URL(t) // start the server (or skip) before the suite's cases
	t.Run("logged", func(t *testing.T) {
		o := pgcache.Options{Pool: sharedPool(t, url)}
		drivertest.RunWith(t, drivertest.Harness{New: harnessOn(o), NewWithDefaultTTL: harnessWithTTLOn(o)})
	})
	t.Run("unlogged", func(t *testing.T) {
		exec(t, url, `CREATE SCHEMA IF NOT EXISTS cachekit_test`)
		o := pgcache.Options{Pool: sharedPool(t, url), Table: "cachekit_test.unlogged_entries", Unlogged: true}
		drivertest.RunWith(t, drivertest.Harness{New: harnessOn(o), NewWithDefaultTTL: harnessWithTTLOn(o)})
	})
}

func harnessOn(o pgcache.Options) func(t *testing.T) driver.Driver {
	return func(t *testing.T) driver.Driver { return newDriver(t, o) }
}

func harnessWithTTLOn(o pgcache.Options) func(t *testing.T, ttl time.Duration) driver.Driver {
	return func(t *testing.T, ttl time.Duration) driver.Driver {
		o.DefaultTTL = ttl
		return newDriver(t, o)
	}
}

// sharedPool is a pool of up to 16 connections on url, 4 of them opened before it is
// returned, closed at the end of the test.
func sharedPool(t *testing.T, url string) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns, cfg.MinConns = 16, 4
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	var conns []*pgxpool.Conn
	for range cfg.MinConns {
		c, err := p.Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	for _, c := range conns {
		c.Release()
	}
	return p
}
