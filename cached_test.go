package cache_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cachekit/cache"
)

func TestCached(t *testing.T) {
	c, ctx := newCache(t, cache.Config{}), ctxT(t)
	type query struct {
		Page  int               `json:"page"`
		Limit int               `json:"limit"`
		F     map[string]string `json:"f"`
	}
	var calls atomic.Int64
	users := cache.Cached(c, "users", time.Minute, func(_ context.Context, id int) (string, error) {
		calls.Add(1)
		return "user", nil
	})
	for range 3 {
		if v, err := users.Get(ctx, 42); v != "user" || err != nil {
			t.Fatal(v, err)
		}
	}
	if calls.Load() != 1 {
		t.Fatalf("memoized fn ran %d times; want 1", calls.Load())
	}
	if k, _ := users.Key(42); k != "users.42" {
		t.Fatalf("Key(42) = %q; want users.42", k)
	}
	if err := users.Invalidate(ctx, 42); err != nil {
		t.Fatal(err)
	}
	_, _ = users.Get(ctx, 42)
	if calls.Load() != 2 {
		t.Fatal("Invalidate did not forget the result")
	}
	search := cache.Cached(c, "search", time.Minute, func(_ context.Context, q query) (int, error) { return q.Page, nil })
	k1, _ := search.Key(query{Page: 1, Limit: 3, F: map[string]string{"b": "2", "a": "1"}})
	k2, _ := search.Key(query{Page: 1, Limit: 3, F: map[string]string{"a": "1", "b": "2"}})
	if k1 != k2 {
		t.Fatalf("equal arguments got different keys: %q, %q", k1, k2)
	}
	lru := cache.CachedWith(c, "on-lru", cache.RememberOptions{TTL: time.Minute, Driver: "lru"}, func(_ context.Context, s string) (string, error) { return s, nil })
	_, _ = lru.Get(ctx, "x")
	onLRU, _ := c.Driver("lru")
	if found, _ := onLRU.Has(ctx, "on-lru.x"); !found {
		t.Fatal("CachedWith Driver did not store on that driver")
	}
	if err := lru.Invalidate(ctx, "x"); err != nil {
		t.Fatal(err)
	}
	if found, _ := onLRU.Has(ctx, "on-lru.x"); found {
		t.Fatal("Invalidate ignored the memo's driver")
	}
}
