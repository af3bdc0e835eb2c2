package registry_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/cachekit/cache"
	"github.com/cachekit/cache/registry"
)

// FromEnv builds the cache the environment describes. A service sets these variables in
// its deployment; here the example sets them itself, with the in-process memory driver.
func ExampleFromEnv() {
	os.Setenv("CACHE_DRIVERS", "memory://?ttl=10m") // one driver, named "default"
	os.Setenv("CACHE_PREFIX", "billing")
	os.Setenv("CACHE_METRICS", "true") // for Cache.Metrics, promcache and otelcache
	defer func() {
		for _, v := range registry.Variables() {
			os.Unsetenv(v.Name)
		}
	}()

	c, err := registry.FromEnv()
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	ctx := context.Background()
	if err := c.Set(ctx, "user.1", "Ada", time.Minute); err != nil {
		log.Fatal(err)
	}
	name, found, err := cache.GetAs[string](ctx, c, "user.1")
	if err != nil {
		log.Fatal(err)
	}
	_, _, _ = cache.GetAs[string](ctx, c, "user.2") // a miss

	m := c.Metrics()
	fmt.Println("driver:", c.Current())
	fmt.Println("user.1:", name, found)
	fmt.Printf("hits %d, misses %d, sets %d\n", m.Hits, m.Misses, m.Sets)

	// A value that does not parse is an error that names the variable.
	os.Setenv("CACHE_METRICS", "yes")
	_, err = registry.FromEnv()
	fmt.Println(err)
	// Output:
	// driver: default
	// user.1: Ada true
	// hits 1, misses 1, sets 1
	// registry: bad configuration: CACHE_METRICS="yes" is not a boolean: use true or false (or 1, 0)
}
