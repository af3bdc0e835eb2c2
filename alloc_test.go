package cache_test

import (
	"context"
	"testing"
	"time"

	"github.com/cachekit/cache"
	"github.com/cachekit/cache/drivers/memorycache"
)

// TestGetHitAllocatesNothing holds the promise that a hit on the memory driver costs no
// allocation, through GetAs and Remember, with and without a prefix and a namespace
// (joined keys are looked up, never built on the heap); Get costs none of its own (its
// destination escapes through package reflect, so it is declared once, outside the
// measured function).
func TestGetHitAllocatesNothing(t *testing.T) {
	if testing.CoverMode() != "" {
		t.Skip("coverage instrumentation allocates")
	}
	ctx := context.Background()
	for _, tc := range []struct{ name, prefix, ns string }{
		{"plain", "", ""}, {"prefix", "app", ""}, {"namespace", "", "users"}, {"prefix+namespace", "app", "users"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := memorycache.New(memorycache.Options{})
			if err != nil {
				t.Fatal(err)
			}
			root, err := cache.New(cache.Config{Drivers: map[string]cache.Driver{"memory": d}, Prefix: tc.prefix})
			if err != nil {
				t.Fatal(err)
			}
			defer root.Close()
			c := root.Namespace(tc.ns)
			if err := c.Set(ctx, "user.1", "ada", 0); err != nil {
				t.Fatal(err)
			}
			var s string
			if n := testing.AllocsPerRun(200, func() {
				s = ""
				if found, err := c.Get(ctx, "user.1", &s); !found || err != nil || s != "ada" {
					t.Fatalf("Get = %q, %v, %v", s, found, err)
				}
			}); n != 0 {
				t.Errorf("Get hit: %v allocations, want 0", n)
			}
			if n := testing.AllocsPerRun(200, func() {
				if s, found, err := cache.GetAs[string](ctx, c, "user.1"); !found || err != nil || s != "ada" {
					t.Fatalf("GetAs = %q, %v, %v", s, found, err)
				}
			}); n != 0 {
				t.Errorf("GetAs hit: %v allocations, want 0", n)
			}
			if n := testing.AllocsPerRun(200, func() {
				s, err := cache.Remember(ctx, c, "user.1", 0, func(context.Context) (string, error) { return "", nil })
				if err != nil || s != "ada" {
					t.Fatalf("Remember = %q, %v", s, err)
				}
			}); n != 0 {
				t.Errorf("Remember hit: %v allocations, want 0", n)
			}
		})
	}
}

// TestGetDecodesIntoANewValue: a read that converts (here through JSON) replaces *dst
// rather than merging into what it held, on every path.
func TestGetDecodesIntoANewValue(t *testing.T) {
	ctx := context.Background()
	d, err := memorycache.New(memorycache.Options{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := cache.New(cache.Config{Drivers: map[string]cache.Driver{"memory": d}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	type user struct{ Name, Email string }
	if err := c.Set(ctx, "u", map[string]any{"Name": "ada"}, 0); err != nil {
		t.Fatal(err)
	}
	u := user{Name: "old", Email: "old@example.com"}
	if found, err := c.Get(ctx, "u", &u); !found || err != nil {
		t.Fatal(found, err)
	}
	if u != (user{Name: "ada"}) {
		t.Fatalf("Get into a used struct = %+v, want only what is stored", u)
	}
}

// The hot path's allocation budget on the memory driver, without a prefix: Get at most
// one (the caller's dst, which escapes through the any parameter), GetAs and a Remember
// hit none.
func TestHitAllocations(t *testing.T) {
	c, ctx := newCache(t, cache.Config{}), context.Background()
	if err := c.Set(ctx, "k", "v", time.Minute); err != nil {
		t.Fatal(err)
	}
	get := testing.AllocsPerRun(1000, func() {
		var s string
		_, _ = c.Get(ctx, "k", &s)
	})
	getAs := testing.AllocsPerRun(1000, func() { _, _, _ = cache.GetAs[string](ctx, c, "k") })
	remember := testing.AllocsPerRun(1000, func() {
		_, _ = cache.Remember(ctx, c, "k", time.Minute, func(context.Context) (string, error) { return "x", nil })
	})
	t.Logf("allocs/op: Get %v, GetAs %v, Remember hit %v", get, getAs, remember)
	if get > 1 || getAs > 0 || remember > 0 {
		t.Fatalf("allocs/op: Get %v (want ≤ 1), GetAs %v (want 0), Remember hit %v (want 0)", get, getAs, remember)
	}
}
