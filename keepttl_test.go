package cache_test

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/cachekit/cache"
)

// Increment and Modify keep a key's remaining TTL, neither dropping nor renewing it, to
// the millisecond: in a synctest bubble the in-process drivers read the bubble's clock,
// which moves only when every goroutine waits. drivertest checks the same promise on
// every driver by the order of expiries instead.
func TestIncrementAndModifyKeepTheTTL(t *testing.T) {
	for _, name := range []string{"memory", "lru"} {
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c, ctx := newCache(t, cache.Config{Default: name}), ctxT(t)
				set := time.Now()
				for _, k := range []string{"counter", "modified"} {
					if err := c.Set(ctx, k, 1, time.Second); err != nil {
						t.Fatal(err)
					}
				}
				time.Sleep(600 * time.Millisecond)
				if n, err := c.Increment(ctx, "counter", 1); n != 2 || err != nil {
					t.Fatalf("Increment = %d, %v; want 2", n, err)
				}
				if n, err := cache.Modify(ctx, c, "modified", func(n int, _ bool) (int, error) { return n + 1, nil }); n != 2 || err != nil {
					t.Fatalf("Modify = %d, %v; want 2", n, err)
				}
				// Alive until the Set's TTL ends (the memory driver's clock is read once a
				// millisecond: its expiry is exact to 1 ms), gone right after it: neither
				// dropped (alive forever) nor renewed (alive until 1.6 s).
				for _, at := range []struct {
					after time.Duration
					alive bool
				}{{998 * time.Millisecond, true}, {1002 * time.Millisecond, false}} {
					time.Sleep(time.Until(set.Add(at.after)))
					for _, k := range []string{"counter", "modified"} {
						if found, err := c.Has(ctx, k); found != at.alive || err != nil {
							t.Fatalf("%s %v after its Set with a TTL of 1s, touched at 600ms: found %v, %v; want %v", k, at.after, found, err, at.alive)
						}
					}
				}
			})
		})
	}
}
