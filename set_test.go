package cache_test

import (
	"testing"
	"time"

	"github.com/cachekit/cache"
)

func TestSetWithDriverOverride(t *testing.T) {
	c, ctx := newCache(t, cache.Config{}), ctxT(t)
	res, err := c.SetWith(ctx, "k", "v", cache.SetOptions{Driver: "lru", TTL: time.Minute})
	if err != nil || !res.Written {
		t.Fatal(res, err)
	}
	if found, _ := c.Has(ctx, "k"); found {
		t.Fatal("a per-call Driver write landed on the current driver")
	}
	lru, _ := c.Driver("lru")
	if found, _ := lru.Has(ctx, "k"); !found {
		t.Fatal("a per-call Driver write is not on that driver")
	}
	if c.Current() != "memory" {
		t.Fatalf("Current() = %q after a per-call override", c.Current())
	}
}
