package cache_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cachekit/cache"
	"github.com/cachekit/cache/drivers/lrucache"
	"github.com/cachekit/cache/drivers/memorycache"
)

// newExampleCache returns a cache on a fresh memory driver, for the examples.
func newExampleCache() *cache.Cache {
	mem, err := memorycache.New(memorycache.Options{})
	if err != nil {
		log.Fatal(err)
	}
	c, err := cache.New(cache.Config{Drivers: map[string]cache.Driver{"memory": mem}})
	if err != nil {
		log.Fatal(err)
	}
	return c
}

// The quick start: one memory driver, a global prefix, a value in and out.
func Example() {
	type User struct {
		ID   int
		Name string
	}
	ctx := context.Background()

	mem, err := memorycache.New(memorycache.Options{})
	if err != nil {
		log.Fatal(err)
	}
	c, err := cache.New(cache.Config{
		Drivers: map[string]cache.Driver{"memory": mem},
		Prefix:  "billing", // keys are stored as "billing.<key>"
	})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	if err := c.Set(ctx, "user.1", User{ID: 1, Name: "Ada"}, 10*time.Minute); err != nil {
		log.Fatal(err)
	}
	var u User
	found, err := c.Get(ctx, "user.1", &u)
	fmt.Println(found, u.Name, err)

	found, err = c.Get(ctx, "user.2", &u) // a miss is not an error
	fmt.Println(found, err)
	// Output:
	// true Ada <nil>
	// false <nil>
}

func ExampleCache_Set() {
	ctx := context.Background()
	c := newExampleCache()
	defer c.Close()

	// A stored zero value is a hit, not a miss.
	if err := c.Set(ctx, "retries", 0, time.Minute); err != nil {
		log.Fatal(err)
	}
	var n int
	found, _ := c.Get(ctx, "retries", &n)
	fmt.Println(found, n)

	// TTL 0 means the driver's default TTL, or no expiry; a negative TTL is an error.
	err := c.Set(ctx, "retries", 1, -time.Second)
	fmt.Println(errors.Is(err, cache.ErrInvalidTTL))
	// Output:
	// true 0
	// true
}

func ExampleCache_SetWith() {
	ctx := context.Background()
	c := newExampleCache()
	defer c.Close()

	// Create writes only if the key is absent or expired: the second call loses.
	for _, v := range []string{"first", "second"} {
		res, err := c.SetWith(ctx, "idempotency.order-7", v, cache.SetOptions{
			TTL:        24 * time.Hour,
			OnConflict: cache.Create,
		})
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(v, "written:", res.Written)
	}
	var s string
	_, _ = c.Get(ctx, "idempotency.order-7", &s)
	fmt.Println("stored:", s)

	// Update writes only if the key is present.
	res, _ := c.SetWith(ctx, "missing", "x", cache.SetOptions{OnConflict: cache.Update})
	fmt.Println("update of a missing key written:", res.Written)
	// Output:
	// first written: true
	// second written: false
	// stored: first
	// update of a missing key written: false
}

func ExampleRemember() {
	ctx := context.Background()
	c := newExampleCache()
	defer c.Close()

	var loads atomic.Int64
	loadTotals := func(ctx context.Context) (int, error) {
		loads.Add(1)
		time.Sleep(10 * time.Millisecond) // a slow query
		return 1234, nil
	}

	// 50 goroutines miss the same key at once: the loader runs once.
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			if _, err := cache.Remember(ctx, c, "report.totals", time.Minute, loadTotals); err != nil {
				log.Print(err)
			}
		})
	}
	wg.Wait()

	n, err := cache.Remember(ctx, c, "report.totals", time.Minute, loadTotals) // a hit
	fmt.Println(n, err, "loads:", loads.Load())
	// Output:
	// 1234 <nil> loads: 1
}

func ExampleLock() {
	ctx := context.Background()
	c := newExampleCache()
	defer c.Close()

	out, err := cache.Lock(ctx, c, "lock.nightly-import", 10*time.Minute, func(ctx context.Context) (string, error) {
		// Not re-entrant: the same key inside fn is held, by us.
		inner, _ := cache.Lock(ctx, c, "lock.nightly-import", time.Minute, func(context.Context) (string, error) {
			return "never runs", nil
		})
		fmt.Println("nested lock acquired:", inner.Acquired)
		return "done", nil // importLatestDataset(ctx)
	})
	if err != nil {
		log.Fatal(err) // fn's error, or the driver failed
	}
	if out.Acquired {
		fmt.Println("import ran:", out.Value)
	} else {
		fmt.Println("skipped: another server is running the import")
	}

	// The lock was released when fn returned: the key can be taken again.
	out, _ = cache.Lock(ctx, c, "lock.nightly-import", 10*time.Minute, func(context.Context) (string, error) {
		return "done again", nil
	})
	fmt.Println(out.Acquired, out.Value)
	// Output:
	// nested lock acquired: false
	// import ran: done
	// true done again
}

func ExampleLockWith() {
	ctx := context.Background()
	c := newExampleCache()
	defer c.Close()

	opts := cache.LockOptions{TTL: 5 * time.Minute, Owner: "worker.payments-2"}
	out, err := cache.LockWith(ctx, c, "lock.payments.batch", opts, func(ctx context.Context) (int, error) {
		// While the lock is held, anyone can see who holds it: the value starts with the
		// owner, then '#' and a token unique to this acquisition.
		var holder string
		if _, err := c.Get(ctx, "lock.payments.batch", &holder); err != nil {
			return 0, err
		}
		owner, _, _ := strings.Cut(holder, "#")
		fmt.Println("held by:", owner)
		return 17, nil // processBatch(ctx)
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("acquired:", out.Acquired, "processed:", out.Value)

	found, _ := c.Has(ctx, "lock.payments.batch")
	fmt.Println("still held:", found)
	// Output:
	// held by: worker.payments-2
	// acquired: true processed: 17
	// still held: false
}

// The third shape: route the whole lock (acquire and release) to another driver.
func ExampleLockWith_driver() {
	ctx := context.Background()
	mem, _ := memorycache.New(memorycache.Options{})
	lru, _ := lrucache.New(lrucache.Options{Capacity: 100})
	c, err := cache.New(cache.Config{
		Drivers: map[string]cache.Driver{"memory": mem, "lru": lru},
		Default: "memory",
	})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	lruView, _ := c.Driver("lru")
	opts := cache.LockOptions{TTL: time.Minute, Driver: "lru"}
	_, err = cache.LockWith(ctx, c, "lock.audit", opts, func(ctx context.Context) (bool, error) {
		onLRU, _ := lruView.Has(ctx, "lock.audit")
		onMemory, _ := c.Has(ctx, "lock.audit")
		fmt.Println("held on lru:", onLRU, "on memory:", onMemory)
		return true, nil // writeAuditLog(ctx)
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("current driver:", c.Current())
	// Output:
	// held on lru: true on memory: false
	// current driver: memory
}

func ExampleCache_Namespace() {
	ctx := context.Background()
	c := newExampleCache()
	defer c.Close()

	users := c.Namespace("users")
	_ = users.Set(ctx, "1", "Ada", 0) // stored as "users.1"
	_ = c.Set(ctx, "usersX", "not in the namespace", 0)

	var name string
	found, _ := c.Get(ctx, "users.1", &name)
	fmt.Println(found, name)

	// RemoveNamespace stops at the dot: "users" and "users.*", never "usersX".
	_ = c.RemoveNamespace(ctx, "users")
	found, _ = users.Has(ctx, "1")
	other, _ := c.Has(ctx, "usersX")
	fmt.Println(found, other)
	// Output:
	// true Ada
	// false true
}

func ExampleCache_Increment() {
	ctx := context.Background()
	c := newExampleCache()
	defer c.Close()

	n, _ := c.Increment(ctx, "hits", 1) // a missing key counts as 0
	fmt.Println(n)
	n, _ = c.Increment(ctx, "hits", 5)
	fmt.Println(n)
	n, _ = c.Decrement(ctx, "hits", 10) // does not stop at zero
	fmt.Println(n)

	_ = c.Set(ctx, "name", "Ada", 0)
	_, err := c.Increment(ctx, "name", 1)
	fmt.Println(errors.Is(err, cache.ErrNotInteger))
	// Output:
	// 1
	// 6
	// -4
	// true
}

func ExampleParseDuration() {
	for _, s := range []string{"30s", "1.5h", "1d", "2 weeks", "1h30m", "90"} {
		d, err := cache.ParseDuration(s)
		fmt.Println(s, "=", d, err)
	}
	_, err := cache.ParseDuration("-5m")
	fmt.Println(err)
	// Output:
	// 30s = 30s <nil>
	// 1.5h = 1h30m0s <nil>
	// 1d = 24h0m0s <nil>
	// 2 weeks = 336h0m0s <nil>
	// 1h30m = 1h30m0s <nil>
	// 90 = 1m30s <nil>
	// cache: invalid duration "-5m": negative
}
