package cache_test

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cachekit/cache"
)

func TestList(t *testing.T) {
	for _, name := range []string{"memory", "lru"} {
		t.Run(name, func(t *testing.T) {
			c, ctx := newCache(t, cache.Config{Default: name}), ctxT(t)
			l := cache.NewList[string](c, "events", time.Minute)
			if n, err := l.Push(ctx, "b", "c"); n != 2 || err != nil {
				t.Fatal(n, err)
			}
			if n, _ := l.Unshift(ctx, "a"); n != 3 {
				t.Fatal(n)
			}
			all, _ := l.Slice(ctx, 0, -1)
			if !slices.Equal(all, []string{"a", "b", "c"}) {
				t.Fatalf("All = %q", all)
			}
			if s, _ := l.Slice(ctx, -2, -1); !slices.Equal(s, []string{"b", "c"}) {
				t.Fatalf("Slice(-2,-1) = %q", s)
			}
			if v, ok, _ := l.Pop(ctx); v != "c" || !ok {
				t.Fatal("Pop", v, ok)
			}
			if v, ok, _ := l.Shift(ctx); v != "a" || !ok {
				t.Fatal("Shift", v, ok)
			}
			_, _ = l.Push(ctx, "x", "y", "z")
			if err := l.Trim(ctx, -2, -1); err != nil {
				t.Fatal(err)
			}
			if all, _ := l.Slice(ctx, 0, -1); !slices.Equal(all, []string{"y", "z"}) {
				t.Fatalf("after Trim(-2,-1) = %q; want the last 2", all)
			}
			_, _, _ = l.Pop(ctx)
			_, _, _ = l.Pop(ctx)
			if found, _ := c.Has(ctx, "events"); found {
				t.Fatal("an empty list was not deleted")
			}
			if _, ok, err := l.Pop(ctx); ok || err != nil {
				t.Fatal("Pop of an empty list", ok, err)
			}
			// Concurrent pushes lose nothing.
			var wg sync.WaitGroup
			for range 20 {
				wg.Go(func() {
					for range 25 {
						if _, err := l.Push(ctx, "e"); err != nil {
							t.Error(err)
						}
					}
				})
			}
			wg.Wait()
			if n, _ := l.Len(ctx); n != 500 {
				t.Fatalf("Len after 500 concurrent pushes = %d", n)
			}
		})
	}
}

// A slice the list handed out never changes under its holder.
func TestListSlicesAreCopies(t *testing.T) {
	c, ctx := newCache(t, cache.Config{}), ctxT(t)
	l := cache.NewList[string](c, "l", time.Minute)
	_, _ = l.Push(ctx, "a", "b", "c")
	all, _ := l.Slice(ctx, 0, -1)
	_, _, _ = l.Pop(ctx)
	_, _ = l.Push(ctx, "x")
	if !slices.Equal(all, []string{"a", "b", "c"}) {
		t.Fatalf("a slice from All changed to %q", all)
	}
}
