package rediscache_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/cachekit/cache"
	"github.com/cachekit/cache/drivers/rediscache"
	"github.com/cachekit/cache/internal/testkit/redistest"
)

// nearEvents records the near tier's events of a cache, in the order its hook saw them.
type nearEvents struct {
	mu     sync.Mutex
	kinds  []cache.EventKind
	events chan cache.Event
}

func (ne *nearEvents) observe(e cache.Event) {
	ne.mu.Lock()
	ne.kinds = append(ne.kinds, e.Kind)
	ne.mu.Unlock()
	ne.events <- e
}

func (ne *nearEvents) seen() []cache.EventKind {
	ne.mu.Lock()
	defer ne.mu.Unlock()
	return append([]cache.EventKind(nil), ne.kinds...)
}

// next waits for the next event, which must be of kind want.
func (ne *nearEvents) next(t *testing.T, want cache.EventKind) {
	t.Helper()
	select {
	case e := <-ne.events:
		if e.Kind != want || e.Op != "Near" || e.Driver != "redis" || e.Key != "" || e.Err != nil {
			t.Fatalf("event %+v; want %v of Op Near, driver redis, no key, no error", e, want)
		}
	case <-time.After(time.Minute): // a hang detector
		t.Fatalf("no %v within a minute; events so far %v", want, ne.seen())
	}
}

// waitNearHit reads key until a read is answered by the near tier.
func waitNearHit(t *testing.T, c *cache.Cache, key string) {
	t.Helper()
	before := c.Metrics().NearHits
	deadline := time.Now().Add(time.Minute) // a hang detector
	for c.Metrics().NearHits == before {
		if time.Now().After(deadline) {
			t.Fatal("no near hit within a minute")
		}
		if _, found := getString(t, c, key); !found {
			t.Fatalf("%q is missing", key)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestNearEvents: the near tier's first confirmation is not reported; each loss of the
// tracking connection (CLIENT KILL TYPE pubsub, from another client) is one
// "near.dropped" event, and its return one "near.restored", in that order.
func TestNearEvents(t *testing.T) {
	srv := redistest.StartWith(t) // of its own: the kills would hit other tests' subscribers
	d := newDriver(t, rediscache.Options{URL: srv.URL(), Near: &rediscache.NearOptions{}})
	ne := &nearEvents{events: make(chan cache.Event, 64)}
	c, err := cache.New(cache.Config{
		Drivers: map[string]cache.Driver{"redis": d},
		Metrics: true,
		Hooks: []cache.Hook{{
			Kinds:   []cache.EventKind{cache.EventNearDropped, cache.EventNearRestored},
			Observe: ne.observe,
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	ctx := context.Background()
	if err := c.Set(ctx, "k", "v", time.Hour); err != nil {
		t.Fatal(err)
	}
	waitNearHit(t, c, "k")
	if got := ne.seen(); len(got) != 0 {
		t.Fatalf("events before any loss: %v; the first confirmation is not a change", got)
	}
	other := plain(t, srv.URL())
	const kills = 3
	for range kills {
		if err := other.Do(ctx, "client", "kill", "type", "pubsub").Err(); err != nil {
			t.Fatal(err)
		}
		ne.next(t, cache.EventNearDropped)
		ne.next(t, cache.EventNearRestored)
		waitNearHit(t, c, "k")
	}
	m := c.Metrics()
	if got := ne.seen(); len(got) != 2*kills {
		t.Errorf("events %v; want %d pairs of near.dropped, near.restored", got, kills)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if got := ne.seen(); len(got) != 2*kills {
		t.Errorf("after Close, events %v; want %d pairs (Close is not a drop)", got, kills)
	}
	if m.NearHits < kills+1 {
		t.Errorf("NearHits %d; want at least %d", m.NearHits, kills+1)
	}
}
