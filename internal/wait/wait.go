// Package wait retries an attempt until it succeeds, with backoff, full jitter and an
// optional watch that wakes the waiter early, and bounds a call by its context.
package wait

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
)

// ErrOver is Loop's error when its wait has elapsed.
var ErrOver = errors.New("wait elapsed")

// Watch returns a channel that receives (or is closed) when what the attempts wait for
// may have changed; its ctx ends when the waiter no longer listens.
type Watch func(ctx context.Context) (<-chan struct{}, error)

// Loop calls attempt until attempt reports done or fails, ctx ends, or wait elapses
// (wait <= 0: only ctx ends it). Before each attempt (but the first, unless watchFirst)
// it calls watch, when there is one, so that a change between an attempt and the wait
// after it is not missed; a watch that fails is skipped for that turn (the attempts
// poll). Between attempts it waits for the watch or for a backoff with full jitter,
// whichever comes first: from minBackoff, doubling up to maxBackoff. It returns
// attempt's error, ErrOver when wait elapsed, and ctx's cause when ctx ended.
func Loop(ctx context.Context, watch Watch, minBackoff, maxBackoff, wait time.Duration, watchFirst bool, attempt func() (done bool, err error)) error {
	deadline := time.Now().Add(wait)
	backoff := minBackoff
	for first := true; ; first = false {
		var woke <-chan struct{}
		cancel := func() {}
		if watch != nil && (watchFirst || !first) {
			var wctx context.Context
			wctx, cancel = context.WithCancel(ctx) // ends the watch after this turn
			if ch, err := watch(wctx); err == nil {
				woke = ch
			}
		}
		done, err := attempt()
		if done || err != nil {
			cancel()
			return err
		}
		sleep := backoff/2 + rand.N(backoff/2+1) // full jitter: waiters do not retry in lockstep
		if wait > 0 {
			left := time.Until(deadline)
			if left <= 0 {
				cancel()
				return ErrOver
			}
			sleep = min(sleep, left)
		}
		t := time.NewTimer(sleep)
		select {
		case <-woke:
		case <-t.C:
		case <-ctx.Done():
		}
		t.Stop()
		cancel()
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		backoff = min(backoff*2, maxBackoff)
	}
}

// Bounded runs f and returns its result, or ctx's error as soon as ctx ends if f has not
// returned by then: a callee that does not honour its context (a client whose commands
// wait out their own timeouts on a frozen connection) cannot hold up the caller. f's
// goroutine finishes in the background when f returns.
func Bounded[T any](ctx context.Context, f func(context.Context) (T, error)) (T, error) {
	type result struct {
		v   T
		err error
	}
	ch := make(chan result, 1)
	go func() {
		v, err := f(ctx)
		ch <- result{v, err}
	}()
	select {
	case r := <-ch:
		return r.v, r.err
	case <-ctx.Done():
		var zero T
		return zero, fmt.Errorf("no answer in time: %w", context.Cause(ctx))
	}
}
