package cache_test

import (
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
