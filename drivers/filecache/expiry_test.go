package filecache_test

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cachekit/cache/drivers/filecache"
)

// The sweep reports each expired entry it removes, by key; a live entry and a Get of an
// expired entry (which removes it first) are not reported twice.
func TestSweepReportsExpiry(t *testing.T) {
	clk := newClock()
	d := newDriver(t, filecache.Options{Now: clk.Now, SweepInterval: -1})
	var mu sync.Mutex
	var got []string
	d.OnExpire(func(key string) {
		mu.Lock()
		got = append(got, key)
		mu.Unlock()
	})
	ctx := t.Context()
	for _, k := range []string{"a", "b"} {
		if err := d.Set(ctx, entry(k, []byte(`1`), time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.Set(ctx, entry("live", []byte(`1`), time.Hour)); err != nil {
		t.Fatal(err)
	}
	clk.Add(2 * time.Minute)
	if _, found, err := d.Get(ctx, "a"); found || err != nil {
		t.Fatalf("Get(a) after its TTL: found %v, err %v", found, err)
	}
	if removed, err := d.Sweep(ctx); err != nil || removed != 1 {
		t.Fatalf("Sweep removed %d, err %v; want 1 (b)", removed, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if want := []string{"a", "b"}; !slices.Equal(got, want) {
		t.Fatalf("expired keys reported %q; want %q", got, want)
	}
}
