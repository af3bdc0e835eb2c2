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

func TestRemember_1000GoroutinesColdKeyRunOnce(t *testing.T) {
	for _, name := range []string{"memory", "memoryExtended", "lru"} {
		t.Run(name, func(t *testing.T) {
			c, ctx := newCache(t, cache.Config{Default: name, Prefix: "app"}), ctxT(t)
			var calls atomic.Int64
			var wg sync.WaitGroup
			start := make(chan struct{})
			errs := make(chan error, 1000)
			for range 1000 {
				wg.Go(func() {
					<-start
					v, err := cache.Remember(ctx, c, "user.1", time.Minute, func(context.Context) (string, error) {
						calls.Add(1)
						time.Sleep(20 * time.Millisecond) // a slow load: the others pile up
						return "Ada", nil
					})
					if err != nil || v != "Ada" {
						errs <- errors.Join(err, errors.New("wrong value "+v))
					}
				})
			}
			close(start)
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			if n := calls.Load(); n != 1 {
				t.Fatalf("fn ran %d times for 1000 concurrent callers; want 1", n)
			}
		})
	}
}

func TestRemember_HitDoesNotCallFn(t *testing.T) {
	c, ctx := newCache(t, cache.Config{}), ctxT(t)
	if err := c.Set(ctx, "k", 0, time.Minute); err != nil { // a zero value is a hit
		t.Fatal(err)
	}
	v, err := cache.Remember(ctx, c, "k", time.Minute, func(context.Context) (int, error) {
		t.Error("fn ran on a hit")
		return 1, nil
	})
	if v != 0 || err != nil {
		t.Fatalf("Remember = %d, %v; want the stored 0", v, err)
	}
}

// In a synctest bubble the load's 20 ms pass only once every other caller waits for it:
// none comes too late for the flight and loads again.
func TestRemember_ErrorReachesEveryWaiterAndStoresNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, ctx := newCache(t, cache.Config{}), ctxT(t)
		errLoad := errors.New("database down")
		var calls atomic.Int64
		var failed atomic.Int64
		var wg sync.WaitGroup
		start := make(chan struct{})
		for range 50 {
			wg.Go(func() {
				<-start
				_, err := cache.Remember(ctx, c, "k", time.Minute, func(context.Context) (int, error) {
					calls.Add(1)
					time.Sleep(20 * time.Millisecond)
					return 0, errLoad
				})
				if errors.Is(err, errLoad) {
					failed.Add(1)
				}
			})
		}
		close(start)
		wg.Wait()
		if failed.Load() != 50 {
			t.Fatalf("%d of 50 callers got the loader's error; want all", failed.Load())
		}
		if calls.Load() != 1 { // every caller joined the flight before the load's 20 ms were over
			t.Fatalf("fn ran %d times for 50 concurrent callers; want 1", calls.Load())
		}
		if found, _ := c.Has(ctx, "k"); found {
			t.Fatal("an error was cached")
		}
	})
}

func TestRemember_WaiterContextEnds(t *testing.T) {
	c := newCache(t, cache.Config{})
	release := make(chan struct{})
	started := make(chan struct{})
	go func() {
		_, _ = cache.Remember(context.Background(), c, "k", time.Minute, func(context.Context) (int, error) {
			close(started)
			<-release
			return 1, nil
		})
	}()
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, err := cache.Remember(ctx, c, "k", time.Minute, func(context.Context) (int, error) { return 2, nil })
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a waiter whose ctx ended got %v; want context.DeadlineExceeded", err)
	}
	close(release)
}

// The goroutine running fn is cancelled; a waiter with a live ctx must not inherit the
// cancellation. (In a synctest bubble the waiter has joined the flight by then.)
func TestRemember_LeaderCancellationIsNotShared(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCache(t, cache.Config{})
		leaderCtx, cancelLeader := context.WithCancel(context.Background())
		started := make(chan struct{})
		done := make(chan struct{})
		go func() {
			defer close(done)
			_, _ = cache.Remember(leaderCtx, c, "k", time.Minute, func(ctx context.Context) (int, error) {
				close(started)
				<-ctx.Done()
				return 0, ctx.Err()
			})
		}()
		<-started
		result := make(chan int, 1)
		go func() {
			v, err := cache.Remember(ctxT(t), c, "k", time.Minute, func(context.Context) (int, error) { return 2, nil })
			if err != nil {
				t.Errorf("waiter: %v", err)
			}
			result <- v
		}()
		time.Sleep(10 * time.Millisecond) // the waiter joins the flight
		cancelLeader()
		<-done
		if v := <-result; v != 2 {
			t.Fatalf("waiter got %d; want 2 from its own load", v)
		}
	})
}

func TestRemember_PanicGoesToTheLoader(t *testing.T) {
	c, ctx := newCache(t, cache.Config{}), ctxT(t)
	defer func() {
		if r := recover(); r != "boom" {
			t.Fatalf("recovered %v; want the loader's panic", r)
		}
	}()
	_, _ = cache.Remember(ctx, c, "k", time.Minute, func(context.Context) (int, error) { panic("boom") })
}

func TestRemember_StoreFailureReturnsValueAndError(t *testing.T) {
	f := newFlaky(t)
	c := newCache(t, cache.Config{Drivers: map[string]cache.Driver{"flaky": f}})
	ctx := ctxT(t)
	v, err := cache.Remember(ctx, c, "k", time.Minute, func(context.Context) (int, error) {
		f.down.Store(true)
		return 7, nil
	})
	if v != 7 || !errors.Is(err, errDown) {
		t.Fatalf("Remember = %d, %v; want 7 and the store error", v, err)
	}
	_, err = cache.Remember(ctx, c, "k", time.Minute, func(context.Context) (int, error) {
		t.Error("fn ran although the read failed")
		return 0, nil
	})
	if !errors.Is(err, errDown) {
		t.Fatalf("Remember on a failing read = %v; want the read error", err)
	}
}

func TestRemember_NullAlwaysRunsFn(t *testing.T) {
	c, ctx := newCache(t, cache.Config{Default: "null"}), ctxT(t)
	var calls int
	for range 3 {
		if _, err := cache.Remember(ctx, c, "k", time.Minute, func(context.Context) (int, error) { calls++; return 1, nil }); err != nil {
			t.Fatal(err)
		}
	}
	if calls != 3 {
		t.Fatalf("fn ran %d times; want 3", calls)
	}
}
