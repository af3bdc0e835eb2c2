package filecache_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/cachekit/cache"
	"github.com/cachekit/cache/drivers/filecache"
)

func Example() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)

	d, err := filecache.New(filecache.Options{Dir: filepath.Join(dir, "cache"), DefaultTTL: time.Hour})
	if err != nil {
		panic(err)
	}
	c, err := cache.New(cache.Config{Drivers: map[string]cache.Driver{"file": d}, Prefix: "app"})
	if err != nil {
		panic(err)
	}
	defer c.Close()
	ctx := context.Background()

	_ = c.Set(ctx, "user.1", "Ada", 0) // the file app.user.1 in Dir, for an hour
	var name string
	found, _ := c.Get(ctx, "user.1", &name)
	fmt.Println(found, name)

	// Exclusive across every process on the host that opens the same Dir.
	out, _ := cache.Lock(ctx, c, "lock.nightly", time.Minute, func(context.Context) (string, error) {
		return "ran", nil
	})
	fmt.Println(out.Acquired, out.Value)

	names, _ := filepath.Glob(filepath.Join(d.Dir(), "app.*"))
	for _, n := range names {
		fmt.Println(filepath.Base(n))
	}
	// Output:
	// true Ada
	// true ran
	// app.user.1
}
