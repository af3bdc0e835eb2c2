package rediscache

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cachekit/cache"
)

// TestFailOpenWithRedisStopped: with Redis stopped, the first Remember under
// Config.FailOpen meets the outage, answers with the loader's value, and leaves the
// breaker open; the next ones answer with the loader's value without a dial. Lock fails
// closed (an error, fn never runs, never contention), and once Redis is back the cache
// stores in Redis again.
func TestFailOpenWithRedisStopped(t *testing.T) {
	d, srv, dials := countingDriver(t, Options{Breaker: BreakerOptions{Cooldown: 50 * time.Millisecond}})
	c, err := cache.New(cache.Config{Drivers: map[string]cache.Driver{"redis": d}, Prefix: "app", FailOpen: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	var loads atomic.Int64
	load := func(context.Context) (string, error) { loads.Add(1); return "loaded", nil }

	held, release := holdSecondProbe(t, d)
	srv.Stop()
	if v, err := cache.Remember(ctx, c, "k", time.Minute, load); err != nil || v != "loaded" {
		t.Fatalf("the first Remember after the stop = %q, %v; want the loader's value", v, err)
	}
	if !d.BreakerOpen() {
		t.Fatal("the first Remember after the stop returned with the breaker closed")
	}
	held() // the probes while open dial too: the dials counted from here are the calls'
	n := dials.n.Load()
	const calls = 300
	for i := range calls {
		if v, err := cache.Remember(ctx, c, "k", time.Minute, load); err != nil || v != "loaded" {
			t.Fatalf("Remember %d with the breaker open = %q, %v; want the loader's value", i, v, err)
		}
	}
	if more := dials.n.Load() - n; more != 0 {
		t.Errorf("Remember with the breaker open dialed %d times; want none", more)
	}
	if got := loads.Load(); got != calls+1 {
		t.Errorf("the loader ran %d times for %d sequential calls; want once per call", got, calls+1)
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
	release()
	// A hang detector, not a speed target: the breaker closes at its next probe.
	deadline := time.Now().Add(time.Minute)
	for {
		if _, err := cache.Remember(ctx, c, "after", time.Minute, load); err != nil {
			t.Fatal(err)
		}
		if n, err := d.Client().Exists(ctx, "app.after").Result(); err == nil && n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("Remember did not store in Redis within a minute of the restart")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
