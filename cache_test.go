package cache_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cachekit/cache"
	"github.com/cachekit/cache/drivers/memorycache"
)

func TestNew_BadConfig(t *testing.T) {
	mem, _ := memorycache.New(memorycache.Options{})
	defer mem.Close()
	for _, tc := range []struct {
		name string
		cfg  cache.Config
		want error
	}{
		{"no drivers", cache.Config{}, cache.ErrInvalidConfig},
		{"nil driver", cache.Config{Drivers: map[string]cache.Driver{"m": nil}}, cache.ErrInvalidConfig},
		{"unknown default", cache.Config{Drivers: map[string]cache.Driver{"m": mem}, Default: "redis"}, cache.ErrUnknownDriver},
		{"two drivers, no default", cache.Config{Drivers: map[string]cache.Driver{"a": mem, "b": mem}}, cache.ErrInvalidConfig},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := cache.New(tc.cfg)
			if c != nil || !errors.Is(err, tc.want) {
				t.Fatalf("New = %v, %v; want nil, %v", c, err, tc.want)
			}
		})
	}
}

func TestUseCurrentDriver(t *testing.T) {
	c, ctx := newCache(t, cache.Config{}), ctxT(t)
	if got := c.Current(); got != "memory" {
		t.Fatalf("Current() = %q; want memory", got)
	}
	if got, want := c.Drivers(), []string{"lru", "memory", "memoryExtended", "null"}; !slices.Equal(got, want) {
		t.Fatalf("Drivers() = %q; want %q", got, want)
	}
	if err := c.Set(ctx, "k", "on memory", time.Minute); err != nil {
		t.Fatal(err)
	}
	lru, err := c.Driver("lru")
	if err != nil {
		t.Fatal(err)
	}
	if err := lru.Set(ctx, "k", "on lru", time.Minute); err != nil {
		t.Fatal(err)
	}
	if lru.Current() != "lru" || c.Current() != "memory" {
		t.Fatalf("a Driver view changed the current driver: %q, %q", lru.Current(), c.Current())
	}
	if err := c.Use("lru"); err != nil {
		t.Fatal(err)
	}
	var s string
	if _, err := c.Get(ctx, "k", &s); err != nil || s != "on lru" {
		t.Fatalf("after Use(lru) Get = %q, %v; want the lru value", s, err)
	}
	for _, err := range []error{c.Use("redis"), func() error { _, err := c.Driver("redis"); return err }(),
		func() error {
			_, err := c.SetWith(ctx, "k", 1, cache.SetOptions{Driver: "redis"})
			return err
		}()} {
		if !errors.Is(err, cache.ErrUnknownDriver) {
			t.Fatalf("unknown driver: %v; want ErrUnknownDriver", err)
		}
	}
	if c.Current() != "lru" {
		t.Fatalf("a failed Use changed the current driver to %q", c.Current())
	}
}

// Use is safe while other goroutines use the cache (run with -race).
func TestUseWhileInUse(t *testing.T) {
	c, ctx := newCache(t, cache.Config{}), ctxT(t)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 8 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if err := c.Set(ctx, "k", 1, time.Minute); err != nil {
					t.Error(err)
				}
				var n int
				if _, err := c.Get(ctx, "k", &n); err != nil {
					t.Error(err)
				}
			}
		})
	}
	for i := range 1000 {
		if err := c.Use([]string{"memory", "lru", "memoryExtended", "null"}[i%4]); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
}

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

func TestPrefixAndNamespaceKeys(t *testing.T) {
	mem, _ := memorycache.New(memorycache.Options{})
	c := newCache(t, cache.Config{Drivers: map[string]cache.Driver{"memory": mem}, Prefix: "billing."})
	raw, err := cache.New(cache.Config{Drivers: map[string]cache.Driver{"memory": mem}}) // same driver, no prefix
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t)
	users := c.Namespace("users")
	if err := users.Namespace("admins").Set(ctx, "1", "Ada", time.Minute); err != nil {
		t.Fatal(err)
	}
	var s string
	if found, _ := raw.Get(ctx, "billing.users.admins.1", &s); !found || s != "Ada" {
		t.Fatalf("the stored key is not billing.users.admins.1 (got %q, %v)", s, found)
	}
	if found, _ := c.Get(ctx, "users.admins.1", &s); !found {
		t.Fatal("a Namespace key is not the dotted key of its parent")
	}
	if got := c.Namespace(""); got != c {
		t.Fatal("Namespace(\"\") is not c itself")
	}
	if err := c.RemoveNamespace(ctx, ""); !errors.Is(err, cache.ErrInvalidKey) {
		t.Fatalf("RemoveNamespace(\"\") = %v; want ErrInvalidKey", err)
	}
	if err := users.RemoveNamespace(ctx, "admins"); err != nil {
		t.Fatal(err)
	}
	if found, _ := raw.Has(ctx, "billing.users.admins.1"); found {
		t.Fatal("RemoveNamespace on a Namespace view did not scope its argument")
	}
}

func TestPrefixFuncPerCall(t *testing.T) {
	type tenantKey struct{}
	c := newCache(t, cache.Config{Prefix: "ignored", PrefixFunc: func(ctx context.Context) string {
		s, _ := ctx.Value(tenantKey{}).(string)
		return s
	}})
	a := context.WithValue(ctxT(t), tenantKey{}, "tenantA")
	b := context.WithValue(ctxT(t), tenantKey{}, "tenantB")
	if err := c.Set(a, "k", "A", time.Minute); err != nil {
		t.Fatal(err)
	}
	var s string
	if found, _ := c.Get(b, "k", &s); found {
		t.Fatal("tenant B sees tenant A's key")
	}
	if found, _ := c.Get(a, "k", &s); !found || s != "A" {
		t.Fatal("tenant A lost its key")
	}
	if err := c.Flush(b); err != nil {
		t.Fatal(err)
	}
	if found, _ := c.Get(a, "k", &s); !found {
		t.Fatal("tenant B's Flush removed tenant A's key")
	}
}

func TestDefault(t *testing.T) {
	if cache.Default() != nil {
		t.Fatal("Default() before SetDefault is not nil")
	}
	c := newCache(t, cache.Config{})
	cache.SetDefault(c)
	t.Cleanup(func() { cache.SetDefault(nil) })
	if cache.Default() != c {
		t.Fatal("Default() is not the cache given to SetDefault")
	}
}

func TestCloseClosesEveryView(t *testing.T) {
	c, ctx := newCache(t, cache.Config{}), ctxT(t)
	ns := c.Namespace("a")
	lru, _ := c.Driver("lru")
	if err := ns.Close(); err != nil {
		t.Fatal(err)
	}
	for _, v := range []*cache.Cache{c, ns, lru} {
		if err := v.Set(ctx, "k", 1, time.Minute); !errors.Is(err, cache.ErrClosed) {
			t.Fatalf("Set after Close = %v; want ErrClosed", err)
		}
	}
}

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
