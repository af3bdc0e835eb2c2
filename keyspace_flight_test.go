package cache_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cachekit/cache"
)

// A loader that fails with its own timeout is not the starter's cancellation: it runs
// once, and every waiting caller gets its error.
func TestLoaderTimeoutIsSharedNotRetried(t *testing.T) {
	for _, op := range []string{"Remember", "SWR"} {
		t.Run(op, func(t *testing.T) {
			c := newCache(t, cache.Config{})
			var runs atomic.Int32
			fn := func(context.Context) (int, error) {
				runs.Add(1)
				time.Sleep(100 * time.Millisecond)
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
			if took > time.Second {
				t.Errorf("the 20 callers took %v; want about 100ms", took)
			}
		})
	}
}

// The starter's own cancellation still hands the load to a waiter, whatever error fn
// returns for it.
func TestStarterCancellationHandsOver(t *testing.T) {
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
	time.Sleep(20 * time.Millisecond) // the waiter joins the flight
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("the starter got %v; want its cancellation", err)
	}
	if v := <-waiter; v != "v" {
		t.Errorf("the waiter got %q; want it to load again and get v", v)
	}
}
