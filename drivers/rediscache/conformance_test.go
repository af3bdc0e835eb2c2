package rediscache_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cachekit/cache/driver"
	"github.com/cachekit/cache/drivers/rediscache"
	"github.com/cachekit/cache/drivertest"
	"github.com/cachekit/cache/internal/testkit/redistest"
)

// TestConformance runs the driver conformance suite on a single Redis, on a Redis
// Cluster, and on a master found through Redis Sentinel (a client the caller builds).
func TestConformance(t *testing.T) {
	for _, tg := range targets {
		t.Run(tg.name, func(t *testing.T) {
			tg.url(t) // start the server (or skip) before the suite's cases
			drivertest.RunWith(t, drivertest.Harness{
				New:               harness(tg.url),
				NewWithDefaultTTL: harnessWithTTL(tg.url),
				Plant:             plantHash,
			})
		})
	}
	t.Run("sentinel", func(t *testing.T) {
		addr := redistest.SentinelAddr(t)
		newDriver := func(t *testing.T, ttl time.Duration) driver.Driver {
			c := redis.NewFailoverClient(&redis.FailoverOptions{
				MasterName:            redistest.SentinelMaster,
				SentinelAddrs:         []string{addr},
				ContextTimeoutEnabled: true,
			})
			t.Cleanup(func() { _ = c.Close() }) // after the driver's Close: the driver never closes it
			return newDriver(t, rediscache.Options{Client: c, DefaultTTL: ttl})
		}
		drivertest.RunWith(t, drivertest.Harness{
			New:               func(t *testing.T) driver.Driver { return newDriver(t, 0) },
			NewWithDefaultTTL: newDriver,
			Plant:             plantHash,
		})
	})
}

// plantHash is the suite's Plant: another program's hash under key.
func plantHash(t *testing.T, d driver.Driver, key string) {
	t.Helper()
	if err := d.(*rediscache.Driver).Client().HSet(context.Background(), key, "field", "theirs").Err(); err != nil {
		t.Fatalf("HSET %q: %v", key, err)
	}
}
