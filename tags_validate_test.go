package cache_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/cachekit/cache"
)

// An invalid tag is refused before anything is written, on every tagged path.
func TestTaggedWritesValidateFirst(t *testing.T) {
	for name, write := range map[string]func(ctx context.Context, c *cache.Cache) error{
		"Set":     func(ctx context.Context, c *cache.Cache) error { return c.Tags("").Set(ctx, "k", 1, time.Minute) },
		"Forever": func(ctx context.Context, c *cache.Cache) error { return c.Tags("ok", "").Forever(ctx, "k", 1) },
		"SetWith": func(ctx context.Context, c *cache.Cache) error {
			_, err := c.SetWith(ctx, "k", 1, cache.SetOptions{TTL: time.Minute, Tags: []string{""}})
			return err
		},
		"SetWith on a view": func(ctx context.Context, c *cache.Cache) error {
			_, err := c.Tags("").SetWith(ctx, "k", 1, cache.SetOptions{TTL: time.Minute})
			return err
		},
		"SetMany": func(ctx context.Context, c *cache.Cache) error {
			return c.Tags("").SetMany(ctx, map[string]any{"k": 1, "k2": 2}, time.Minute)
		},
		"Remember": func(ctx context.Context, c *cache.Cache) error {
			_, err := cache.Remember(ctx, c.Tags(""), "k", time.Minute, func(context.Context) (int, error) { return 1, nil })
			return err
		},
		"SWR": func(ctx context.Context, c *cache.Cache) error {
			_, err := cache.SWR(ctx, c.Tags(""), "k", cache.SWROptions{Fresh: time.Minute, Stale: time.Hour}, func(context.Context) (int, error) { return 1, nil })
			return err
		},
		"Cached": func(ctx context.Context, c *cache.Cache) error {
			_, err := cache.Cached(c.Tags(""), "m", time.Minute, func(context.Context, int) (int, error) { return 1, nil }).Get(ctx, 1)
			return err
		},
	} {
		t.Run(name, func(t *testing.T) {
			c, mem := newScannable(t, cache.Config{})
			if err := write(ctxT(t), c); !errors.Is(err, cache.ErrInvalidKey) {
				t.Fatalf("a write with an empty tag = %v; want ErrInvalidKey", err)
			}
			if left := storedKeys(t, mem); len(left) != 0 {
				t.Fatalf("the refused write stored %q", left)
			}
		})
	}
}
