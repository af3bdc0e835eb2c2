package drivertest

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cachekit/cache"
	"github.com/cachekit/cache/driver"
)

var modifier = capability{"driver.Modifier or driver.Atomic", func(d driver.Driver) bool {
	_, ok := d.(driver.Modifier)
	return ok || atomicOps.has(d)
}}

type counter struct {
	N    int            `json:"n"`
	Seen map[string]int `json:"seen"` // not comparable: compare-and-swap by == would fail
}

// modifyCases are the promises of cache.Modify.
var modifyCases = []testCase{
	{
		name:        "ModifyAtomic",
		explanation: "concurrent Modify calls on one key lose no update, on map-bearing values too",
		needs:       []capability{modifier},
		f: func(t *testing.T, e *env) {
			const per = 10
			workers := min(e.n, 16)
			parallel(workers, func(int) {
				for range per {
					_, err := cache.ModifyWith(e.ctx, e.c, "ctr", cache.ModifyOptions{MaxAttempts: 10_000},
						func(cur counter, found bool) (counter, error) {
							seen := map[string]int{} // a copy: cur may be the stored value
							for k, v := range cur.Seen {
								seen[k] = v
							}
							seen["x"]++
							return counter{N: cur.N + 1, Seen: seen}, nil
						})
					if err != nil {
						t.Errorf("Modify: %v", err)
						return
					}
				}
			})
			got, _ := mustGet[counter](t, e, "ctr")
			if want := workers * per; got.N != want || got.Seen["x"] != want {
				t.Fatalf("after %d concurrent Modify calls: %+v; want N = %d", want, got, want)
			}
		},
	},
	{
		name:        "ModifySemantics",
		explanation: "Modify keeps the remaining TTL, sets a given TTL, deletes on DeleteKey, and changes nothing when fn fails",
		needs:       []capability{modifier},
		f: func(t *testing.T, e *env) {
			inc := func(n int, _ bool) (int, error) { return n + 1, nil }
			if v, err := cache.Modify(e.ctx, e.c, "new", inc); v != 1 || err != nil {
				t.Fatalf("Modify of a missing key = %d, %v; want 1", v, err)
			}
			errGone := errors.New("the key expired")
			keepsTTL(t, e, "Modify", func(key string, _ int) bool {
				_, err := cache.Modify(e.ctx, e.c, key, func(n int, found bool) (int, error) {
					if !found {
						return 0, errGone // write nothing
					}
					return n + 1, nil
				})
				if err != nil && !errors.Is(err, errGone) {
					t.Fatal(err)
				}
				return err == nil
			})
			if _, err := cache.ModifyWith(e.ctx, e.c, "given", cache.ModifyOptions{TTL: ttlUnit}, inc); err != nil {
				t.Fatal(err)
			}
			expires(t, "ModifyOptions.TTL was not applied", func() bool {
				_, found := mustGet[int](t, e, "given")
				return !found
			})
			mustSet(t, e, "keep", 5, time.Minute)
			errNo := errors.New("no")
			if _, err := cache.Modify(e.ctx, e.c, "keep", func(int, bool) (int, error) { return 0, errNo }); !errors.Is(err, errNo) {
				t.Fatalf("Modify with a failing fn = %v; want its error", err)
			}
			if v, _ := mustGet[int](t, e, "keep"); v != 5 {
				t.Fatalf("a failed Modify changed the value to %d", v)
			}
			if _, err := cache.Modify(e.ctx, e.c, "keep", func(int, bool) (int, error) { return 0, cache.DeleteKey }); err != nil {
				t.Fatal(err)
			}
			if _, found := mustGet[int](t, e, "keep"); found {
				t.Fatal("DeleteKey did not delete the key")
			}
		},
	},
	{
		name:        "ListAtomic",
		explanation: "list pushes from many goroutines and caches lose nothing; Trim keeps LTRIM's negative indexes",
		needs:       []capability{modifier},
		f: func(t *testing.T, e *env) {
			other := e.sibling(t, e.prefix)
			workers := min(e.n, 8)
			parallel(workers, func(i int) {
				c := e.c
				if i%2 == 1 {
					c = other
				}
				l := cache.NewList[int](c, "log", time.Minute)
				for j := range 10 {
					if _, err := l.Push(e.ctx, j); err != nil {
						t.Errorf("Push: %v", err)
						return
					}
				}
			})
			l := cache.NewList[int](e.c, "log", time.Minute)
			if n, err := l.Len(e.ctx); n != workers*10 || err != nil {
				t.Fatalf("Len = %d, %v; want %d", n, err, workers*10)
			}
			if err := l.Trim(e.ctx, -5, -1); err != nil {
				t.Fatal(err)
			}
			if n, _ := l.Len(e.ctx); n != 5 {
				t.Fatalf("Len after Trim(-5, -1) = %d; want 5", n)
			}
		},
	},
	{
		name:        "SWR",
		explanation: "SWR serves a stale value at once and refreshes it in the background",
		f: func(t *testing.T, e *env) {
			var calls atomic.Int64
			load := func(context.Context) (int64, error) { return calls.Add(1), nil }
			o := cache.SWROptions{Fresh: ttlUnit / 2, Stale: time.Minute}
			if v, err := cache.SWR(e.ctx, e.c, "swr", o, load); v != 1 || err != nil {
				t.Fatalf("cold SWR = %d, %v", v, err)
			}
			time.Sleep(ttlUnit)
			if v, err := cache.SWR(e.ctx, e.c, "swr", o, load); v != 1 || err != nil {
				t.Fatalf("stale SWR = %d, %v; want the stale value", v, err)
			}
			eventually(t, "the stale value was never refreshed", func() bool {
				v, err := cache.SWR(e.ctx, e.c, "swr", o, load)
				return err == nil && v >= 2
			})
		},
	},
	{
		name:        "TagsInvalidate",
		explanation: "InvalidateTags makes every entry of any of the tags a miss, through views and with a prefix, and leaves other entries alone",
		needs:       []capability{modifier},
		f: func(t *testing.T, e *env) {
			users := e.c.Namespace("users").Tags("users")
			if err := users.Set(e.ctx, "1", "Ada", time.Minute); err != nil {
				t.Fatal(err)
			}
			if err := users.Tags("admins").Forever(e.ctx, "2", "Bob"); err != nil {
				t.Fatal(err)
			}
			if _, err := e.c.SetWith(e.ctx, "post.1", "p", cache.SetOptions{TTL: time.Minute, Tags: []string{"posts", "users"}}); err != nil {
				t.Fatal(err)
			}
			if _, err := cache.Remember(e.ctx, e.c.Tags("posts"), "post.2", time.Minute, func(context.Context) (string, error) { return "q", nil }); err != nil {
				t.Fatal(err)
			}
			mustSet(t, e, "untagged", "u", time.Minute)
			if err := e.c.InvalidateTags(e.ctx, "admins"); err != nil {
				t.Fatal(err)
			}
			for k, want := range map[string]bool{"users.1": true, "users.2": false, "post.1": true, "post.2": true} {
				if _, found := mustGet[string](t, e, k); found != want {
					t.Errorf("after invalidating admins, %s found = %v; want %v", k, found, want)
				}
			}
			if err := users.InvalidateTags(e.ctx); err != nil { // the view's tag: users
				t.Fatal(err)
			}
			for k, want := range map[string]bool{"users.1": false, "post.1": false, "post.2": true, "untagged": true} {
				if _, found := mustGet[string](t, e, k); found != want {
					t.Errorf("after invalidating users, %s found = %v; want %v", k, found, want)
				}
			}
			// The index drops expired entries on the next tagged write: it stays bounded.
			for i := range 20 {
				if _, err := e.c.SetWith(e.ctx, fmt.Sprintf("short.%d", i), i, cache.SetOptions{TTL: ttlUnit / 3, Tags: []string{"short"}}); err != nil {
					t.Fatal(err)
				}
			}
			time.Sleep(ttlUnit / 2)
			if _, err := e.c.SetWith(e.ctx, "short.last", 0, cache.SetOptions{TTL: time.Minute, Tags: []string{"short"}}); err != nil {
				t.Fatal(err)
			}
			// The index is one of the cache's own records, which no application key can
			// name: read it from the driver.
			raw, _, err := e.d.Get(e.ctx, e.prefix+".|tag:short")
			if err != nil {
				t.Fatal(err)
			}
			var idx map[string]int64
			if enc, ok := e.d.(driver.Encoder); ok {
				b, _ := raw.([]byte)
				_ = enc.Codec().Unmarshal(b, &idx)
			} else {
				idx, _ = raw.(map[string]int64)
			}
			if len(idx) != 1 {
				t.Fatalf("the tag index holds %d entries after its others expired; want 1", len(idx))
			}
		},
	},
}
