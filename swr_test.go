package cache_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cachekit/cache"
)

// In a synctest bubble (here and below) time moves only when every goroutine waits: a
// value is fresh or stale exactly when its TTLs say, however busy the machine is.
func TestSWR(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, ctx := newCache(t, cache.Config{}), ctxT(t)
		var calls atomic.Int64
		refreshed := make(chan struct{}, 10)
		load := func(context.Context) (int64, error) {
			n := calls.Add(1)
			if n > 1 {
				refreshed <- struct{}{}
			}
			return n, nil
		}
		o := cache.SWROptions{Fresh: 100 * time.Millisecond, Stale: time.Minute}
		// Cold: one load for 50 concurrent callers.
		var wg sync.WaitGroup
		for range 50 {
			wg.Go(func() {
				if v, err := cache.SWR(ctx, c, "k", o, load); v != 1 || err != nil {
					t.Errorf("cold SWR = %d, %v; want 1", v, err)
				}
			})
		}
		wg.Wait()
		if calls.Load() != 1 {
			t.Fatalf("a cold key loaded %d times; want 1", calls.Load())
		}
		// Fresh: no load.
		if v, _ := cache.SWR(ctx, c, "k", o, load); v != 1 || calls.Load() != 1 {
			t.Fatalf("fresh SWR = %d after %d loads", v, calls.Load())
		}
		time.Sleep(150 * time.Millisecond)
		// Stale: the old value at once, one refresh in the background.
		if v, err := cache.SWR(ctx, c, "k", o, load); v != 1 || err != nil {
			t.Fatalf("stale SWR = %d, %v; want the stale 1 at once", v, err)
		}
		for range 9 { // the refresh may have landed meanwhile
			if v, err := cache.SWR(ctx, c, "k", o, load); (v != 1 && v != 2) || err != nil {
				t.Fatalf("stale SWR = %d, %v; want 1 or the refreshed 2", v, err)
			}
		}
		select {
		case <-refreshed:
		case <-time.After(5 * time.Second):
			t.Fatal("no background refresh")
		}
		time.Sleep(20 * time.Millisecond)
		if n := calls.Load(); n != 2 {
			t.Fatalf("%d loads after 10 stale reads; want 2 (one refresh)", n)
		}
		if v, _ := cache.SWR(ctx, c, "k", o, load); v != 2 {
			t.Fatalf("after the refresh SWR = %d; want 2", v)
		}
		// A failed refresh keeps the stale value and is reported.
		time.Sleep(150 * time.Millisecond)
		errLoad := errors.New("backend down")
		reported := make(chan error, 1)
		o.OnRefreshError = func(_ string, err error) { reported <- err }
		if v, _ := cache.SWR(ctx, c, "k", o, func(context.Context) (int64, error) { return 0, errLoad }); v != 2 {
			t.Fatalf("stale SWR = %d; want 2", v)
		}
		if err := <-reported; !errors.Is(err, errLoad) {
			t.Fatalf("OnRefreshError got %v", err)
		}
		if v, _ := cache.SWR(ctx, c, "k", o, load); v != 2 {
			t.Fatalf("a failed refresh lost the stale value: %d", v)
		}
		if _, err := cache.SWR(ctx, c, "k", cache.SWROptions{Fresh: time.Minute, Stale: time.Second}, load); !errors.Is(err, cache.ErrInvalidTTL) {
			t.Fatalf("Stale <= Fresh = %v; want ErrInvalidTTL", err)
		}
	})
}

// Close waits for a background refresh and cancels its context. (In a synctest bubble the
// value is stale after the sleep: the memory driver's clock runs on the bubble's time.)
func TestSWRRefreshEndsAtClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCache(t, cache.Config{})
		ctx := context.Background()
		o := cache.SWROptions{Fresh: time.Millisecond, Stale: time.Minute}
		if _, err := cache.SWR(ctx, c, "k", o, func(context.Context) (int, error) { return 1, nil }); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
		started := make(chan struct{})
		var sawCancel atomic.Bool
		_, _ = cache.SWR(ctx, c, "k", o, func(ctx context.Context) (int, error) {
			close(started)
			<-ctx.Done()
			sawCancel.Store(true)
			return 0, ctx.Err()
		})
		<-started
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
		if !sawCancel.Load() {
			t.Fatal("Close returned before the refresh ended")
		}
	})
}
