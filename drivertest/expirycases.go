package drivertest

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cachekit/cache"
	"github.com/cachekit/cache/driver"
)

var expiryNotifier = capOf[driver.ExpiryNotifier]("driver.ExpiryNotifier")

// expiryCases are the promises of drivers that report expiry.
var expiryCases = []testCase{
	{
		name:        "ExpiredEvent",
		explanation: "a driver that reports expiry reports an entry it drops for its TTL, once, as an expired event with the caller's key, to the cache whose prefix it is under only",
		needs:       []capability{expiryNotifier},
		f: func(t *testing.T, e *env) {
			var mu sync.Mutex
			var got []string
			sub := e.c.Subscribe(0, func(ev cache.Event) {
				mu.Lock()
				got = append(got, ev.Kind.String()+" "+ev.Driver+" "+ev.Key)
				mu.Unlock()
			}, cache.EventExpired)
			defer sub()
			other := e.sibling(t, e.prefix+"B") // its keys start with the prefix, not "prefix."
			if err := other.Set(e.ctx, "exp.other", 1, ttlUnit); err != nil {
				t.Fatal(err)
			}
			defer func() { _ = other.Remove(e.ctx, "exp.other") }()
			mustSet(t, e, "exp.k", 1, ttlUnit)
			mustSet(t, e, "exp.live", 1, time.Minute)
			expires(t, "exp.k expires", func() bool {
				_, found := mustGet[int](t, e, "exp.k")
				var n int
				_, _ = other.Get(e.ctx, "exp.other", &n)
				return !found
			})
			want := "expired d exp.k"
			eventually(t, "an expired event for exp.k", func() bool {
				_, _ = mustGet[int](t, e, "exp.k") // a driver that drops expired entries lazily
				mu.Lock()
				defer mu.Unlock()
				return slices.Contains(got, want)
			})
			time.Sleep(50 * time.Millisecond) // a second report, if any, would come now
			mu.Lock()
			defer mu.Unlock()
			for _, s := range got {
				if s != want {
					t.Fatalf("events %q: only %q was due (not another prefix's key, not a live key)", got, want)
				}
			}
			if n := len(got); n != 1 {
				t.Fatalf("%d expired events for one expiry: %q", n, got)
			}
		},
	},
}
