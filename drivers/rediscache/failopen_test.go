package rediscache

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/cachekit/cache"
)

// TestFailOpenWithRedisStopped: with Redis stopped and the breaker open, Remember under
// Config.FailOpen answers with the loader's value in the loader's time plus at most a
// millisecond (p99), Lock fails closed (an error, fn never runs, never contention), and
// once Redis is back the cache stores in Redis again within a second.
func TestFailOpenWithRedisStopped(t *testing.T) {
	d, srv := breakerDriver(t, Options{})
	c, err := cache.New(cache.Config{Drivers: map[string]cache.Driver{"redis": d}, Prefix: "app", FailOpen: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	const loaderTime = 2 * time.Millisecond
	var loaderTook time.Duration // the last load's own time, measured inside it
	load := func(context.Context) (string, error) {
		start := time.Now()
		time.Sleep(loaderTime)
		loaderTook = time.Since(start)
		return "loaded", nil
	}

	openBreaker(t, d, srv)

	var over []time.Duration // each call's time beyond the loader's
	for i := range 300 {
		start := time.Now()
		v, err := cache.Remember(ctx, c, "k", time.Minute, load)
		took := time.Since(start)
		if err != nil || v != "loaded" {
			t.Fatalf("Remember %d with Redis stopped = %q, %v; want the loader's value", i, v, err)
		}
		over = append(over, took-loaderTook)
	}
	slices.Sort(over)
	p50, p99, maxOver := over[len(over)/2], over[len(over)*99/100], over[len(over)-1]
	t.Logf("Remember with the breaker open, beyond the loader's %v: p50 %v, p99 %v, max %v", loaderTime, p50, p99, maxOver)
	if p99 > time.Millisecond {
		t.Errorf("Remember's p99 beyond the loader is %v, want at most 1ms", p99)
	}

	ran := false
	out, err := cache.Lock(ctx, c, "job", time.Second, func(context.Context) (int, error) { ran = true; return 1, nil })
	if err == nil || ran || out.Acquired || errors.Is(err, cache.ErrNotAcquired) {
		t.Fatalf("Lock with Redis stopped = %+v, %v (fn ran: %v); want an error that is not contention, fn not run", out, err, ran)
	}
	if !errors.Is(err, ErrUnavailable) {
		t.Errorf("Lock's error %v does not say Redis is unavailable", err)
	}

	srv.Restart(t)
	back := time.Now()
	for {
		if _, err := cache.Remember(ctx, c, "after", time.Minute, load); err != nil {
			t.Fatal(err)
		}
		if n, err := d.Client().Exists(ctx, "app.after").Result(); err == nil && n == 1 {
			break
		}
		if time.Since(back) > 5*time.Second {
			t.Fatal("Remember did not store in Redis within 5 s of the restart")
		}
		time.Sleep(5 * time.Millisecond)
	}
	recovered := time.Since(back)
	t.Logf("after the restart, Remember stored in Redis again after %v", recovered.Round(time.Millisecond))
	if recovered > time.Second {
		t.Errorf("calls went back to Redis %v after the restart, want within 1s", recovered)
	}
}
