package rediscache_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/alicebob/miniredis/v2"

	"github.com/cachekit/cache"
	"github.com/cachekit/cache/drivers/rediscache"
)

// A cache on Redis, here an in-process miniredis so that the example runs anywhere; with
// a real Redis only the URL changes. Values, a lock and Once go through the same driver
// that a fleet of servers would share.
func Example_miniredis() {
	mr, err := miniredis.Run() // stands in for redis-server
	if err != nil {
		log.Fatal(err)
	}
	defer mr.Close()

	rds, err := rediscache.New(rediscache.Options{URL: "redis://" + mr.Addr() + "/0"})
	if err != nil {
		log.Fatal(err)
	}
	c, err := cache.New(cache.Config{Drivers: map[string]cache.Driver{"redis": rds}, Prefix: "billing"})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()

	type User struct {
		ID   int    `json:"id"`
		Name string `json:"name"`
	}
	if err := c.Set(ctx, "user.1", User{ID: 1, Name: "Ada"}, 10*time.Minute); err != nil {
		log.Fatal(err)
	}
	u, found, err := cache.GetAs[User](ctx, c, "user.1")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("found:", found, u.Name)
	// The wire format: the key is prefix.key, the value plain JSON, the TTL Redis's own.
	raw, _ := mr.Get("billing.user.1")
	fmt.Println("in Redis:", raw, mr.TTL("billing.user.1"))

	out, err := cache.Lock(ctx, c, "lock.nightly-import", time.Minute, func(ctx context.Context) (string, error) {
		return "imported", nil
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("lock:", out.Acquired, out.Value)

	for range 2 { // a webhook delivered twice: processed once
		res, err := cache.Once(ctx, c, "webhook.stripe.evt_1", 24*time.Hour, func(ctx context.Context) (string, error) {
			return "charge recorded", nil
		})
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println("once: ran", res.Ran, "->", res.Value)
	}
	// Output:
	// found: true Ada
	// in Redis: {"id":1,"name":"Ada"} 10m0s
	// lock: true imported
	// once: ran true -> charge recorded
	// once: ran false -> charge recorded
}
