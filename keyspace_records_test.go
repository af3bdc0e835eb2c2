package cache_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cachekit/cache"
	"github.com/cachekit/cache/internal/wait"
)

// An application key never shadows a record the cache keeps for itself.
func TestApplicationKeysNeverShadowRecords(t *testing.T) {
	ctx := ctxT(t)
	t.Run("negative mark", func(t *testing.T) {
		c := newCache(t, cache.Config{Prefix: "app"})
		if err := c.Set(ctx, "status:none", true, time.Minute); err != nil {
			t.Fatal(err)
		}
		v, err := cache.RememberWith(ctx, c, "status", cache.RememberOptions{NegativeTTL: time.Minute},
			func(context.Context) (string, error) { return "loaded", nil })
		if err != nil || v != "loaded" {
			t.Fatalf("Remember(status) with the application key status:none = %q, %v; want loaded", v, err)
		}
	})
	t.Run("freshness mark", func(t *testing.T) {
		c := newCache(t, cache.Config{Prefix: "app"})
		if err := c.Set(ctx, "rates", "old", time.Minute); err != nil { // stale: no freshness mark
			t.Fatal(err)
		}
		if err := c.Set(ctx, "rates:fresh", true, time.Minute); err != nil {
			t.Fatal(err)
		}
		refreshed := make(chan struct{})
		_, err := cache.SWR(ctx, c, "rates", cache.SWROptions{Fresh: time.Minute, Stale: time.Hour},
			func(context.Context) (string, error) { close(refreshed); return "new", nil })
		if err != nil {
			t.Fatal(err)
		}
		select {
		case <-refreshed:
		case <-time.After(hangAfter): // a hang detector: the refresh starts at once
			t.Fatal("the application key rates:fresh made a stale value look fresh: no refresh")
		}
	})
	t.Run("remember lock", func(t *testing.T) {
		c := newCache(t, cache.Config{Prefix: "app"})
		if err := c.Set(ctx, "report:remember-lock", "pid.1#ABCDEFGHIJKLMNOPQRSTUVWXYZ", time.Minute); err != nil {
			t.Fatal(err)
		}
		// Remember takes its load lock at the first attempt: it never waits.
		p := &wait.Probe{}
		_, err := cache.RememberWith(wait.WithProbe(ctx, p), c, "report", cache.RememberOptions{Distributed: true, WaitTimeout: time.Minute},
			func(context.Context) (string, error) { return "r", nil })
		if err != nil {
			t.Fatal(err)
		}
		if why, ok := p.Done(); !ok || why != wait.First || p.Attempts(wait.Watched)+p.Attempts(wait.Polled) != 0 {
			t.Fatalf("Remember's load lock: taken %v (the winning attempt: %v) after %d watched and %d polled attempts; want taken at the first: it waited for an application key it took for its load lock",
				ok, why, p.Attempts(wait.Watched), p.Attempts(wait.Polled))
		}
	})
	t.Run("tag index", func(t *testing.T) {
		c := newCache(t, cache.Config{Prefix: "app"})
		if err := c.Set(ctx, "cachekit:tag:t", "mine", time.Minute); err != nil {
			t.Fatal(err)
		}
		if err := c.Tags("t").Set(ctx, "k", 1, time.Minute); err != nil {
			t.Fatal(err)
		}
		var s string
		if found, err := c.Get(ctx, "cachekit:tag:t", &s); err != nil || !found || s != "mine" {
			t.Fatalf("the application key cachekit:tag:t holds %q (found %v, err %v) after a tagged write; want mine", s, found, err)
		}
	})
}

// Every record the cache keeps for itself is under the key's own name (or, for a tag's
// index, under the prefix), holds the reserved marker, and cannot be named by the
// application.
func TestRecordsHoldTheReservedMarker(t *testing.T) {
	const marker = "|"
	cases := []struct {
		name   string
		under  string // every record starts with this
		record func(ctx context.Context, c *cache.Cache, inside func()) error
	}{
		{"negative mark", "app.user.1.", func(ctx context.Context, c *cache.Cache, _ func()) error {
			_, err := cache.RememberWith(ctx, c, "user.1", cache.RememberOptions{NegativeTTL: time.Minute},
				func(context.Context) (int, error) { return 0, cache.ErrNotFound })
			if errors.Is(err, cache.ErrNotFound) {
				err = nil
			}
			return err
		}},
		{"freshness mark", "app.user.1.", func(ctx context.Context, c *cache.Cache, _ func()) error {
			_, err := cache.SWR(ctx, c, "user.1", cache.SWROptions{Fresh: time.Minute, Stale: time.Hour},
				func(context.Context) (int, error) { return 1, nil })
			return err
		}},
		{"remember lock", "app.user.1.", func(ctx context.Context, c *cache.Cache, inside func()) error {
			_, err := cache.RememberWith(ctx, c, "user.1", cache.RememberOptions{Distributed: true},
				func(context.Context) (int, error) { inside(); return 1, nil })
			return err
		}},
		{"tag index", "app.", func(ctx context.Context, c *cache.Cache, _ func()) error {
			return c.Tags("t").Set(ctx, "user.1", 1, time.Minute)
		}},
		{"once", "app.user.1", func(ctx context.Context, c *cache.Cache, inside func()) error {
			_, err := cache.Once(ctx, c, "user.1", time.Minute, func(context.Context) (int, error) { inside(); return 1, nil })
			return err
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, mem := newScannable(t, cache.Config{Prefix: "app"})
			ctx := ctxT(t)
			records := map[string]bool{}
			collect := func() {
				for _, k := range storedKeys(t, mem) {
					if k != "app.user.1" {
						records[k] = true
					}
				}
			}
			if err := tc.record(ctx, c, collect); err != nil {
				t.Fatal(err)
			}
			collect()
			if tc.name != "once" && len(records) == 0 {
				t.Fatal("no record was written")
			}
			for k := range records {
				if !strings.Contains(k, marker) || !strings.HasPrefix(k, tc.under) {
					t.Errorf("the record %q is not under %q with the reserved marker %q", k, tc.under, marker)
				}
				name := strings.TrimPrefix(k, "app.")
				if err := c.Set(ctx, name, 1, time.Minute); !errors.Is(err, cache.ErrInvalidKey) {
					t.Errorf("Set(%q), a record's name, = %v; want ErrInvalidKey", name, err)
				}
			}
			// RemoveNamespace of the key removes its records with it.
			if tc.under != "app." {
				if err := c.RemoveNamespace(ctx, "user.1"); err != nil {
					t.Fatal(err)
				}
				if left := storedKeys(t, mem); len(left) != 0 {
					t.Errorf("RemoveNamespace(user.1) left %q", left)
				}
			}
		})
	}
}

// The reserved marker is refused in every keyed call's key and in namespaces, before
// anything is written.
func TestReservedMarkerIsRefused(t *testing.T) {
	c, mem := newScannable(t, cache.Config{Prefix: "app"})
	ctx := ctxT(t)
	for _, key := range []string{"a|b", "|", "k.|none", "k|fresh"} {
		calls := map[string]func() error{
			"Set":     func() error { return c.Set(ctx, key, 1, 0) },
			"Get":     func() error { _, err := c.Get(ctx, key, new(int)); return err },
			"Remove":  func() error { return c.Remove(ctx, key) },
			"SetMany": func() error { return c.SetMany(ctx, map[string]any{"ok": 1, key: 1}, 0) },
			"Remember": func() error {
				_, err := cache.Remember(ctx, c, key, 0, func(context.Context) (int, error) { return 1, nil })
				return err
			},
			"Namespace": func() error {
				return c.Namespace(key).Set(ctx, "x", 1, 0)
			},
			"Lock": func() error {
				_, err := cache.Lock(ctx, c, key, time.Minute, func(context.Context) (int, error) { return 1, nil })
				return err
			},
		}
		for name, call := range calls {
			if err := call(); !errors.Is(err, cache.ErrInvalidKey) {
				t.Errorf("%s with %q = %v; want ErrInvalidKey", name, key, err)
			}
		}
	}
	if left := storedKeys(t, mem); len(left) != 0 {
		t.Errorf("refused calls stored %q", left)
	}
}

// RemoveMarks removes a key's negative mark and freshness mark, and leaves its value;
// Memo.Invalidate removes the result and its negative mark.
func TestRemoveMarks(t *testing.T) {
	c, mem := newScannable(t, cache.Config{Prefix: "app"})
	ctx := ctxT(t)
	o := cache.RememberOptions{NegativeTTL: time.Minute}
	if _, err := cache.RememberWith(ctx, c, "user.404", o, func(context.Context) (string, error) { return "", cache.ErrNotFound }); !errors.Is(err, cache.ErrNotFound) {
		t.Fatal(err)
	}
	if _, err := cache.SWR(ctx, c, "rates", cache.SWROptions{Fresh: time.Minute, Stale: time.Hour}, func(context.Context) (int, error) { return 1, nil }); err != nil {
		t.Fatal(err)
	}
	if err := c.RemoveMarks(ctx, "user.404", "rates"); err != nil {
		t.Fatal(err)
	}
	if got := storedKeys(t, mem); !slices.Equal(got, []string{"app.rates"}) {
		t.Fatalf("after RemoveMarks the store holds %q; want only the value app.rates", got)
	}
	if v, err := cache.RememberWith(ctx, c, "user.404", o, func(context.Context) (string, error) { return "Ada", nil }); err != nil || v != "Ada" {
		t.Fatalf("Remember after RemoveMarks = %q, %v; want a load", v, err)
	}

	m := cache.CachedWith(c, "user", o, func(_ context.Context, id int) (string, error) { return "", cache.ErrNotFound })
	if _, err := m.Get(ctx, 7); !errors.Is(err, cache.ErrNotFound) {
		t.Fatal(err)
	}
	if err := m.Invalidate(ctx, 7); err != nil {
		t.Fatal(err)
	}
	for _, k := range storedKeys(t, mem) {
		if strings.HasPrefix(k, "app.user.7") {
			t.Errorf("Memo.Invalidate left %q", k)
		}
	}
}
