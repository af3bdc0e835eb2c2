package cache_test

import (
	"context"
	"fmt"
	"time"

	"github.com/cachekit/cache"
	"github.com/cachekit/cache/drivers/lrucache"
)

// Subscribe with kinds gets only those: here errors and expiries. The hits and writes
// are not queued for it, and cost the calls one atomic load.
func ExampleCache_Subscribe_kinds() {
	ctx := context.Background()
	now := time.Unix(1_800_000_000, 0)
	lru, _ := lrucache.New(lrucache.Options{Now: func() time.Time { return now }}) // a clock the example moves
	c, _ := cache.New(cache.Config{Drivers: map[string]cache.Driver{"lru": lru}, Prefix: "app"})
	defer c.Close()

	var seen []string // written by the handler only; read after Stop
	stop := c.Subscribe(0, func(e cache.Event) {
		seen = append(seen, fmt.Sprintf("%s %s %q", e.Kind, e.Op, e.Key))
	}, cache.EventError, cache.EventExpired)

	_ = c.Namespace("session").Set(ctx, "42", "alice", time.Minute)
	var s string
	_, _ = c.Get(ctx, "session.42", &s) // a hit: not asked for
	now = now.Add(2 * time.Minute)
	_, _ = c.Get(ctx, "session.42", &s) // a miss, and the driver drops the expired entry
	_, _ = c.Get(ctx, "", &s)           // an error

	stop()
	for _, line := range seen {
		fmt.Println(line)
	}
	// Output:
	// expired Expire "session.42"
	// error Get ""
}
