package cache_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/cachekit/cache"
	"github.com/cachekit/cache/driver"
	"github.com/cachekit/cache/drivers/memorycache"
)

// nearStore is the memory driver with a near tier (driver.Near) of its own: a map of
// the values it answers without the store. (The manager fills the near tier of byte
// drivers only, so the test fills it.)
type nearStore struct {
	*memorycache.Driver
	mu   sync.Mutex
	kept map[string]any
}

func (n *nearStore) NearGet(key string) (any, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	v, ok := n.kept[key]
	return v, ok
}

func (n *nearStore) NearGetJoined(scope, key string) (any, bool) {
	return n.NearGet(scope + "." + key)
}

func (n *nearStore) NearReserve(string) uint64 { return 1 }

var _ driver.Near = (*nearStore)(nil)

func (n *nearStore) NearFill(key string, v any, _ uint64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.kept[key] = v
}

func TestMetricsNearHits(t *testing.T) {
	ctx := ctxT(t)
	mem, err := memorycache.New(memorycache.Options{})
	if err != nil {
		t.Fatal(err)
	}
	c := newCache(t, cache.Config{
		Drivers: map[string]cache.Driver{"near": &nearStore{Driver: mem, kept: map[string]any{"k": "v"}}},
		Metrics: true,
	})
	for _, k := range []string{"k", "s"} {
		if err := c.Set(ctx, k, "v", time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	var s string
	for _, k := range []string{"k", "k", "s"} { // the near tier twice, then the store
		if found, err := c.Get(ctx, k, &s); !found || err != nil {
			t.Fatalf("Get(%q) = %v, %v", k, found, err)
		}
	}
	if _, err := cache.Remember(ctx, c, "k", time.Minute, func(context.Context) (string, error) { return "loaded", nil }); err != nil {
		t.Fatal(err)
	}
	m := c.Metrics()
	if d := m.Drivers["near"]; d.Hits != 4 || d.NearHits != 3 {
		t.Errorf("driver near: %d hits, %d near hits; want 4 and 3 (the read of s went to the store)", d.Hits, d.NearHits)
	}
	if m.NearHits != 3 {
		t.Errorf("totals: %d near hits, want 3", m.NearHits)
	}
}

func TestMetricsFailedOpenAndErrorsByOp(t *testing.T) {
	ctx := ctxT(t)
	f := newFlaky(t)
	c := newCache(t, cache.Config{
		Drivers:  map[string]cache.Driver{"store": f},
		FailOpen: true,
		Metrics:  true,
	})
	f.down.Store(true)
	var s string
	if found, err := c.Get(ctx, "k", &s); found || err != nil {
		t.Fatalf("Get with the store down = %v, %v; want a miss", found, err)
	}
	if _, err := cache.Remember(ctx, c, "k", time.Minute, func(context.Context) (string, error) { return "x", nil }); err != nil {
		t.Fatal(err)
	}
	if err := c.Set(ctx, "k", "v", time.Minute); !errors.Is(err, errDown) {
		t.Fatalf("Set with the store down = %v, want errDown", err)
	}
	// Locks never fail open.
	if _, err := cache.Lock(ctx, c, "l", time.Minute, func(context.Context) (int, error) { return 0, nil }); err == nil {
		t.Fatal("Lock with the store down succeeded")
	}
	d := c.Metrics().Drivers["store"]
	if d.FailedOpen != 2 {
		t.Errorf("FailedOpen = %d, want 2 (Get and Remember, once per call)", d.FailedOpen)
	}
	var sum int64
	for _, n := range d.ErrorsByOp {
		sum += n
	}
	if sum != d.Errors {
		t.Errorf("ErrorsByOp %v adds up to %d, want Errors = %d", d.ErrorsByOp, sum, d.Errors)
	}
	for _, op := range []string{"Get", "Remember", "Set", "Lock"} {
		if d.ErrorsByOp[op] == 0 {
			t.Errorf("ErrorsByOp %v: no %s error", d.ErrorsByOp, op)
		}
	}
	if n := c.Metrics().ErrorsByOp["Set"]; n != d.ErrorsByOp["Set"] {
		t.Errorf("totals: %d Set errors, want %d", n, d.ErrorsByOp["Set"])
	}
}
