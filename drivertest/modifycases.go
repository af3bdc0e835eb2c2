package drivertest

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cachekit/cache"
	"github.com/cachekit/cache/driver"
)

var modifier = capability{"driver.Modifier or driver.Swapper", func(d driver.Driver) bool {
	if _, ok := d.(driver.Modifier); ok {
		return true
	}
	_, ok := d.(driver.Swapper)
	return ok && conditional.has(d) && compareDel.has(d)
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
							if cur.Seen == nil {
								cur.Seen = map[string]int{}
							}
							cur.N++
							cur.Seen["x"]++
							return cur, nil
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
			set := time.Now()
			mustSet(t, e, "ttl", 1, 2*ttlUnit)
			for time.Since(set) < 2*ttlUnit-ttlUnit/3 { // no reads: they would slide the TTL
				if _, err := cache.Modify(e.ctx, e.c, "ttl", inc); err != nil {
					t.Fatal(err)
				}
				time.Sleep(ttlUnit / 5)
			}
			time.Sleep(time.Until(set.Add(2*ttlUnit + 50*time.Millisecond)))
			if _, found := mustGet[int](t, e, "ttl"); found {
				t.Fatal("Modify renewed or dropped the key's TTL instead of keeping it")
			}
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
}
