package cache_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cachekit/cache"
)

// A loader that fails with its own timeout is not the starter's cancellation: it runs
// once, and every waiting caller gets its error when it ends. In a synctest bubble every
// caller has joined the flight before the loader's 100 ms are over, and the callers are
// done exactly when the loader is: none ran it again.
func TestLoaderTimeoutIsSharedNotRetried(t *testing.T) {
	for _, op := range []string{"Remember", "SWR"} {
		t.Run(op, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c := newCache(t, cache.Config{})
				var runs atomic.Int32
				const loadTakes = 100 * time.Millisecond
				fn := func(context.Context) (int, error) {
					runs.Add(1)
					time.Sleep(loadTakes)
					return 0, fmt.Errorf("db: %w", context.DeadlineExceeded)
				}
				start := time.Now()
				errs := make([]error, 20)
				var wg sync.WaitGroup
				for i := range errs {
					wg.Go(func() {
						ctx := ctxT(t)
						if op == "SWR" {
							_, errs[i] = cache.SWR(ctx, c, "k", cache.SWROptions{Fresh: time.Minute, Stale: time.Hour}, fn)
						} else {
							_, errs[i] = cache.Remember(ctx, c, "k", time.Minute, fn)
						}
					})
				}
				wg.Wait()
				took := time.Since(start)
				if n := runs.Load(); n != 1 {
					t.Errorf("the loader ran %d times; want 1", n)
				}
				for i, err := range errs {
					if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "db: ") {
						t.Errorf("caller %d got %v; want the loader's error", i, err)
					}
				}
				if took != loadTakes {
					t.Errorf("the 20 callers were done %v after the start; want %v, when the one load ended", took, loadTakes)
				}
			})
		})
	}
}

// The starter's own cancellation still hands the load to a waiter, whatever error fn
// returns for it. (In a synctest bubble the waiter has joined the flight when the
// starter is cancelled: the sleep ends only once every goroutine waits.)
func TestStarterCancellationHandsOver(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCache(t, cache.Config{})
		starter, cancel := context.WithCancel(ctxT(t))
		started := make(chan struct{})
		var runs atomic.Int32
		fn := func(ctx context.Context) (string, error) {
			if runs.Add(1) == 1 {
				close(started)
				<-ctx.Done()
				return "", errors.New("db: connection closed") // not a context error
			}
			return "v", nil
		}
		done := make(chan error, 1)
		go func() { _, err := cache.Remember(starter, c, "k", time.Minute, fn); done <- err }()
		<-started
		waiter := make(chan string, 1)
		go func() {
			v, err := cache.Remember(ctxT(t), c, "k", time.Minute, fn)
			if err != nil {
				v = err.Error()
			}
			waiter <- v
		}()
		time.Sleep(time.Millisecond) // the waiter joins the flight
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("the starter got %v; want its cancellation", err)
		}
		if v := <-waiter; v != "v" {
			t.Errorf("the waiter got %q; want it to load again and get v", v)
		}
		if n := runs.Load(); n != 2 {
			t.Errorf("the loader ran %d times; want 2: the starter's, then the waiter's", n)
		}
	})
}
