package cache_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"strings"
	"sync/atomic"
	"time"

	"github.com/cachekit/cache"
	"github.com/cachekit/cache/drivers/memorycache"
)

// Modify is an atomic read-modify-write; returning cache.DeleteKey deletes the key.
func ExampleModify() {
	type cart struct {
		Items map[string]int
		Total int
	}
	ctx := context.Background()
	c := newExampleCache()
	defer c.Close()

	add := func(sku string, n int) func(cur cart, found bool) (cart, error) {
		return func(cur cart, found bool) (cart, error) {
			// On an in-process driver cur is the stored value itself: copy a map or a
			// slice before changing it, never change it in place.
			items := make(map[string]int, len(cur.Items)+1)
			for k, v := range cur.Items {
				items[k] = v
			}
			items[sku] += n
			return cart{Items: items, Total: cur.Total + n}, nil
		}
	}
	if _, err := cache.Modify(ctx, c, "cart.7", add("apple", 2)); err != nil { // a new key
		log.Fatal(err)
	}
	got, err := cache.Modify(ctx, c, "cart.7", add("pear", 1))
	fmt.Println(got.Items["apple"], got.Items["pear"], got.Total, err)

	// fn's error leaves the key alone and is returned.
	errEmpty := errors.New("nothing to check out")
	_, err = cache.Modify(ctx, c, "cart.8", func(cur cart, found bool) (cart, error) {
		if !found {
			return cur, errEmpty
		}
		return cur, nil
	})
	fmt.Println(errors.Is(err, errEmpty))

	// DeleteKey deletes the key.
	_, err = cache.Modify(ctx, c, "cart.7", func(cart, bool) (cart, error) { return cart{}, cache.DeleteKey })
	found, _ := c.Has(ctx, "cart.7")
	fmt.Println(found, err)
	// Output:
	// 2 1 3 <nil>
	// true
	// false <nil>
}

// SWR serves a stale value at once and refreshes it in the background.
func ExampleSWR() {
	ctx := context.Background()
	c := newExampleCache()
	defer c.Close() // also cancels and waits for a refresh that is still running

	var loads atomic.Int64
	load := func(context.Context) (string, error) {
		return fmt.Sprintf("rates v%d", loads.Add(1)), nil
	}
	o := cache.SWROptions{Fresh: 300 * time.Millisecond, Stale: time.Hour}

	v, _ := cache.SWR(ctx, c, "fx.rates", o, load) // cold: loads, and waits for it
	fmt.Println(v)
	v, _ = cache.SWR(ctx, c, "fx.rates", o, load) // fresh: no load
	fmt.Println(v)

	time.Sleep(350 * time.Millisecond)
	v, _ = cache.SWR(ctx, c, "fx.rates", o, load) // stale: returned at once, refreshed behind
	fmt.Println(v)

	for v != "rates v2" { // the stale value until the background refresh has stored its own
		time.Sleep(time.Millisecond)
		v, _ = cache.SWR(ctx, c, "fx.rates", o, load)
	}
	fmt.Println(v, "loads:", loads.Load())
	// Output:
	// rates v1
	// rates v1
	// rates v1
	// rates v2 loads: 2
}

// A Tags view tags what it writes; Invalidate removes every entry of any of its tags.
func ExampleCache_Tags() {
	ctx := context.Background()
	c := newExampleCache()
	defer c.Close()

	users := c.Tags("users")
	_ = users.Set(ctx, "user.1", "Ada", time.Hour)
	_ = users.Tags("admins").Set(ctx, "user.2", "Bob", time.Hour) // tagged users and admins
	_, _ = c.SetWith(ctx, "team.9", "core", cache.SetOptions{TTL: time.Hour, Tags: []string{"admins"}})
	_ = c.Set(ctx, "config", "on", time.Hour) // not tagged

	show := func() {
		var out []string
		for _, k := range []string{"user.1", "user.2", "team.9", "config"} {
			found, _ := c.Has(ctx, k)
			out = append(out, fmt.Sprintf("%s:%v", k, found))
		}
		fmt.Println(strings.Join(out, " "))
	}
	if err := c.InvalidateTags(ctx, "admins"); err != nil {
		log.Fatal(err)
	}
	show()
	if err := users.InvalidateTags(ctx); err != nil { // the view's tags: users
		log.Fatal(err)
	}
	show()
	// Output:
	// user.1:true user.2:false team.9:false config:true
	// user.1:false user.2:false team.9:false config:true
}

// Cached memoizes a function of one argument.
func ExampleCached() {
	ctx := context.Background()
	c := newExampleCache()
	defer c.Close()

	var calls atomic.Int64
	userName := cache.Cached(c, "user.name", 10*time.Minute, func(ctx context.Context, id int) (string, error) {
		calls.Add(1)
		return fmt.Sprintf("user-%d", id), nil // a database query, say
	})

	a, _ := userName.Get(ctx, 42)
	b, _ := userName.Get(ctx, 42) // from the cache
	key, _ := userName.Key(42)
	fmt.Println(a, b, key, "calls:", calls.Load())

	_ = userName.Invalidate(ctx, 42)
	_, _ = userName.Get(ctx, 42) // runs fn again
	fmt.Println("calls:", calls.Load())

	type query struct {
		Status string            `json:"status"`
		Filter map[string]string `json:"filter"`
	}
	search := cache.Cached(c, "orders.search", time.Minute, func(ctx context.Context, q query) (int, error) {
		return 0, nil
	})
	key, _ = search.Key(query{Status: "open", Filter: map[string]string{"region": "eu", "currency": "EUR"}})
	fmt.Println(key)
	// Output:
	// user-42 user-42 user.name.42 calls: 1
	// calls: 2
	// orders.search.{"status":"open","filter":{"currency":"EUR","region":"eu"}}
}

// A List keeps a list under one key; indexes are Redis's, negative from the end.
func ExampleNewList() {
	ctx := context.Background()
	c := newExampleCache()
	defer c.Close()

	recent := cache.NewList[string](c, "recent.searches", time.Hour)
	_, _ = recent.Push(ctx, "go", "redis", "otter")
	n, _ := recent.Unshift(ctx, "cache")
	fmt.Println(n)

	last2, _ := recent.Slice(ctx, -2, -1)
	fmt.Println(last2)

	v, ok, _ := recent.Pop(ctx)
	fmt.Println(v, ok)
	v, ok, _ = recent.Shift(ctx)
	fmt.Println(v, ok)

	_, _ = recent.Push(ctx, "a", "b", "c")
	_ = recent.Trim(ctx, -3, -1) // keep the last 3
	all, _ := recent.Slice(ctx, 0, -1)
	fmt.Println(all)

	_ = recent.Clear(ctx)
	n, _ = recent.Len(ctx)
	_, ok, _ = recent.Pop(ctx)
	fmt.Println(n, ok)
	// Output:
	// 4
	// [redis otter]
	// otter true
	// cache true
	// [a b c]
	// 0 false
}

// Subscribe hands every event to a handler on the subscription's own goroutine.
func ExampleCache_Subscribe() {
	ctx := context.Background()
	c := newExampleCache()
	defer c.Close()

	var seen []string // written by the handler only; read after Stop
	stop := c.Subscribe(0, func(e cache.Event) {
		seen = append(seen, fmt.Sprintf("%s %s %q %q", e.Kind, e.Op, e.Driver, e.Key))
	})

	_ = c.Set(ctx, "k", 1, time.Minute)
	var n int
	_, _ = c.Get(ctx, "k", &n)
	_, _ = c.Get(ctx, "nope", &n)
	_ = c.Remove(ctx, "k")
	_, _ = cache.Lock(ctx, c, "lock.job", time.Minute, func(context.Context) (int, error) { return 0, nil })
	_, _ = c.Get(ctx, "", &n) // an empty key: an error, before a driver was chosen

	dropped := stop() // delivers what is queued, then returns
	for _, s := range seen {
		fmt.Println(s)
	}
	fmt.Println("dropped:", dropped)
	// Output:
	// set Set "memory" "k"
	// hit Get "memory" "k"
	// miss Get "memory" "nope"
	// removed Remove "memory" "k"
	// lock.acquired Lock "memory" "lock.job"
	// lock.released Release "memory" "lock.job"
	// error Get "" ""
	// dropped: 0
}

// Config.Metrics turns on counters per driver; Metrics returns a snapshot.
func ExampleCache_Metrics() {
	ctx := context.Background()
	c := newExampleCache()
	defer c.Close()
	mem, err := memorycache.New(memorycache.Options{})
	if err != nil {
		log.Fatal(err)
	}
	mc, err := cache.New(cache.Config{Drivers: map[string]cache.Driver{"memory": mem}, Metrics: true})
	if err != nil {
		log.Fatal(err)
	}
	defer mc.Close()

	_ = mc.Set(ctx, "k", 1, time.Minute)
	var n int
	for range 3 {
		_, _ = mc.Get(ctx, "k", &n)
	}
	_, _ = mc.Get(ctx, "nope", &n)

	m := mc.Metrics()
	fmt.Println(m.Hits, m.Misses, m.Sets, m.HitRate)
	fmt.Println(m.Drivers["memory"].Hits)
	fmt.Println(c.Metrics().Drivers == nil) // a cache without Config.Metrics: empty
	// Output:
	// 3 1 1 0.75
	// 3
	// true
}

// NegativeTTL remembers that a load found nothing, for a shorter time.
func ExampleRememberWith_negative() {
	type user struct{ Name string }
	ctx := context.Background()
	c := newExampleCache()
	defer c.Close()

	var loads atomic.Int64
	load := func(ctx context.Context) (user, error) {
		loads.Add(1)
		return user{}, fmt.Errorf("user 404: %w", cache.ErrNotFound) // not in the database
	}
	o := cache.RememberOptions{TTL: time.Hour, NegativeTTL: time.Minute}
	for range 3 {
		_, err := cache.RememberWith(ctx, c, "user.404", o, load)
		fmt.Println(errors.Is(err, cache.ErrNotFound))
	}
	fmt.Println("loads:", loads.Load())

	// The user is created: drop the mark, or the next minute still says "not found".
	_ = c.RemoveMarks(ctx, "user.404")
	u, err := cache.RememberWith(ctx, c, "user.404", o, func(context.Context) (user, error) { return user{"Ada"}, nil })
	fmt.Println(u.Name, err)
	// Output:
	// true
	// true
	// true
	// loads: 1
	// Ada <nil>
}

// GetAs reads a value as a T, without a destination pointer.
func ExampleGetAs() {
	type user struct {
		ID   int
		Name string
	}
	ctx := context.Background()
	c := newExampleCache()
	defer c.Close()

	_ = c.Set(ctx, "user.1", user{1, "Ada"}, time.Hour)
	u, found, err := cache.GetAs[user](ctx, c, "user.1")
	fmt.Println(u.Name, found, err)

	_, found, err = cache.GetAs[user](ctx, c, "user.2") // a miss is not an error
	fmt.Println(found, err)

	_, _ = c.Increment(ctx, "visits", 3) // an int64 counter, read as an int
	n, _, err := cache.GetAs[int](ctx, c, "visits")
	fmt.Println(n, err)
	// Output:
	// Ada true <nil>
	// false <nil>
	// 3 <nil>
}
