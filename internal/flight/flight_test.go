package flight

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/sync/singleflight"
)

// The tests run in synctest bubbles: a sleep there ends only once every other goroutine
// of the bubble waits, so the callers have joined the flight when it ends, however busy
// the machine is.

func TestOneLoadForConcurrentCallers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var g singleflight.Group
		var loads atomic.Int32
		release := make(chan struct{})
		var wg sync.WaitGroup
		for range 10 {
			wg.Go(func() {
				v, err := Do[int](context.Background(), &g, "k", func() (any, error) {
					loads.Add(1)
					<-release
					return 7, nil
				})
				if v != 7 || err != nil {
					t.Errorf("%v %v", v, err)
				}
			})
		}
		time.Sleep(20 * time.Millisecond)
		close(release)
		wg.Wait()
		if n := loads.Load(); n != 1 {
			t.Fatalf("%d loads", n)
		}
	})
}

func TestPartialAndErrors(t *testing.T) {
	var g singleflight.Group
	boom := errors.New("boom")
	v, err := Do[string](context.Background(), &g, "k", func() (any, error) { return "v", &Partial{boom} })
	if v != "v" || err != boom {
		t.Fatalf("partial: %q %v", v, err)
	}
	v, err = Do[string](context.Background(), &g, "k", func() (any, error) { return "v", boom })
	if v != "" || err != boom {
		t.Fatalf("error: %q %v", v, err)
	}
	n, err := Do[int](context.Background(), &g, "k", func() (any, error) { return nil, nil })
	if n != 0 || err != nil {
		t.Fatalf("nil: %v %v", n, err)
	}
}

func TestWaiterCtxEnds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var g singleflight.Group
		release := make(chan struct{})
		defer close(release)
		go Do[int](context.Background(), &g, "k", func() (any, error) { <-release; return 1, nil })
		time.Sleep(10 * time.Millisecond)
		cause := errors.New("gone")
		ctx, cancel := context.WithCancelCause(context.Background())
		cancel(cause)
		if _, err := Do[int](ctx, &g, "k", func() (any, error) { return 2, nil }); err != cause {
			t.Fatalf("err %v", err)
		}
	})
}

// The starter's ctx ends and its load fails for it: a waiter with a live ctx loads again.
func TestStarterEndedIsNotTheWaitersFailure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var g singleflight.Group
		sctx, scancel := context.WithCancel(context.Background())
		started := make(chan struct{})
		done := make(chan error, 1)
		go func() {
			_, err := Do[int](sctx, &g, "k", func() (any, error) {
				close(started)
				<-sctx.Done()
				time.Sleep(20 * time.Millisecond) // the waiter joins before the load fails
				return nil, sctx.Err()
			})
			done <- err
		}()
		<-started
		wdone := make(chan struct{})
		var v int
		var werr error
		go func() {
			defer close(wdone)
			v, werr = Do[int](context.Background(), &g, "k", func() (any, error) { return 9, nil })
		}()
		time.Sleep(5 * time.Millisecond)
		scancel()
		<-wdone
		if v != 9 || werr != nil {
			t.Fatalf("waiter: %v %v", v, werr)
		}
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Fatalf("starter: %v", err)
		}
	})
}

func TestPanicGoesToTheRunner(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var g singleflight.Group
		release := make(chan struct{})
		panicked := make(chan any, 1)
		go func() {
			defer func() { panicked <- recover() }()
			Do[int](context.Background(), &g, "k", func() (any, error) {
				return Call(context.Background(), func(context.Context) (int, error) { <-release; panic("boom") })
			})
		}()
		time.Sleep(10 * time.Millisecond)
		errc := make(chan error, 1)
		go func() {
			_, err := Do[int](context.Background(), &g, "k", func() (any, error) { return 1, nil })
			errc <- err
		}()
		time.Sleep(10 * time.Millisecond)
		close(release)
		if p := <-panicked; p != "boom" {
			t.Fatalf("runner recovered %v", p)
		}
		var pe *PanicError
		if err := <-errc; !errors.As(err, &pe) || pe.Value != "boom" {
			t.Fatalf("waiter: %v", err)
		}
	})
}
