package rediscache_test

import (
	"testing"

	"github.com/cachekit/cache/drivertest"
)

// TestConformance runs the driver conformance suite on a single Redis and on a Redis
// Cluster.
func TestConformance(t *testing.T) {
	for _, tg := range targets {
		t.Run(tg.name, func(t *testing.T) {
			tg.url(t) // start the server (or skip) before the suite's cases
			drivertest.RunWith(t, drivertest.Harness{
				New:               harness(tg.url),
				NewWithDefaultTTL: harnessWithTTL(tg.url),
			})
		})
	}
}
