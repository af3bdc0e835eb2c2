package cache_test

import (
	"testing"
	"time"

	"github.com/cachekit/cache"
)

func TestGetConvertsAcrossTypes(t *testing.T) {
	c, ctx := newCache(t, cache.Config{}), ctxT(t)
	type user struct {
		Name string `json:"name"`
	}
	if err := c.Set(ctx, "u", &user{"Ada"}, time.Minute); err != nil {
		t.Fatal(err)
	}
	var u user
	if _, err := c.Get(ctx, "u", &u); err != nil || u.Name != "Ada" {
		t.Fatalf("stored *user read into user = %+v, %v", u, err)
	}
	var m map[string]any
	if _, err := c.Get(ctx, "u", &m); err != nil || m["name"] != "Ada" {
		t.Fatalf("stored *user read into a map = %v, %v", m, err)
	}
	var n int
	if _, err := c.Get(ctx, "u", &n); err == nil {
		t.Fatal("a struct read into an int is not an error")
	}
	if _, err := c.Get(ctx, "u", nil); err == nil {
		t.Fatal("Get into nil is not an error")
	}
	if _, err := c.Get(ctx, "u", u); err == nil {
		t.Fatal("Get into a non-pointer is not an error")
	}
}

func TestGetAs(t *testing.T) {
	c, ctx := newCache(t, cache.Config{}), ctxT(t)
	if err := c.Set(ctx, "n", int64(7), time.Minute); err != nil {
		t.Fatal(err)
	}
	if v, found, err := cache.GetAs[int64](ctx, c, "n"); v != 7 || !found || err != nil {
		t.Fatalf("GetAs[int64] = %d, %v, %v", v, found, err)
	}
	if v, found, err := cache.GetAs[int](ctx, c, "n"); v != 7 || !found || err != nil {
		t.Fatalf("GetAs[int] of an int64 = %d, %v, %v; want a conversion", v, found, err)
	}
	if _, found, err := cache.GetAs[string](ctx, c, "missing"); found || err != nil {
		t.Fatalf("GetAs of a missing key = %v, %v", found, err)
	}
}
