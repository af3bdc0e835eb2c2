package drivertest

import (
	"errors"
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
}
