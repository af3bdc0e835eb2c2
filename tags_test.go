package cache_test

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/cachekit/cache"
	"github.com/cachekit/cache/drivers/memorycache"
)

// A tag index outlives the driver's default TTL: it must outlive the entries it lists.
func TestTagIndexIgnoresDefaultTTL(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mem, _ := memorycache.New(memorycache.Options{DefaultTTL: 50 * time.Millisecond})
		c, ctx := newCache(t, cache.Config{Drivers: map[string]cache.Driver{"m": mem}}), ctxT(t)
		if err := c.Tags("t").Forever(ctx, "k", 1); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
		if err := c.InvalidateTags(ctx, "t"); err != nil {
			t.Fatal(err)
		}
		if found, _ := c.Has(ctx, "k"); found {
			t.Fatal("the tag index expired with the default TTL and Invalidate missed the entry")
		}
	})
}
