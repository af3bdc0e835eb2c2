// Package wait retries an attempt until it succeeds, with backoff, full jitter and an
// optional watch that wakes the waiter early, and bounds a call by its context.
package wait

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
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
//
// A [Probe] in ctx (see [WithProbe]) is told why each attempt runs and how it ended.
func Loop(ctx context.Context, watch Watch, minBackoff, maxBackoff, wait time.Duration, watchFirst bool, attempt func() (done bool, err error)) error {
	p, _ := ctx.Value(probeKey{}).(*Probe)
	deadline := time.Now().Add(wait)
	backoff := minBackoff
	why := First
	for first := true; ; first = false {
		var woke <-chan struct{}
		cancel := func() {}
		if watch != nil && (watchFirst || !first) {
			var wctx context.Context
			wctx, cancel = context.WithCancel(ctx) // ends the watch after this turn
			if ch, err := watch(wctx); err == nil {
				woke = ch
			} else if p != nil {
				p.watchErrs.Add(1)
			}
		}
		done, err := attempt()
		if p != nil {
			p.tried(why, done, err)
		}
		if done || err != nil {
			cancel()
			return err
		}
		sleep := backoff/2 + rand.N(backoff/2+1) // full jitter: waiters do not retry in lockstep
		if p != nil && p.Poll > 0 && woke != nil {
			sleep = p.Poll
		}
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
			why = Watched
		case <-t.C:
			why = Polled
			select { // a watch that fired as the timer ran out woke the waiter too
			case <-woke:
				why = Watched
			default:
			}
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

// Why is what made [Loop] run an attempt.
type Why uint8

const (
	// First is the first attempt, made at once.
	First Why = iota
	// Watched is an attempt made because the watch fired.
	Watched
	// Polled is an attempt made because the backoff ran out first.
	Polled
	numWhy
)

func (w Why) String() string {
	switch w {
	case First:
		return "first"
	case Watched:
		return "watched"
	case Polled:
		return "polled"
	}
	return fmt.Sprintf("Why(%d)", uint8(w))
}

// Probe observes the Loops run with a context that carries it ([WithProbe]), and can
// stretch their poll: tests use it to tell a waiter woken by a watch from one woken by
// its poll, by counting rather than by timing. Its methods are safe for concurrent use.
type Probe struct {
	// Poll, if > 0, replaces the backoff of every turn that has a watch: set it far
	// beyond a test's length, and only the watch can wake the waiter in time. Turns
	// without a watch (no Watch, or one that failed) keep their backoff.
	Poll time.Duration
	// Tried, if set, is called after each attempt with why it ran and what it returned.
	Tried func(why Why, done bool, err error)

	counts    [numWhy]atomic.Int64
	won       atomic.Int32 // 1 + the Why of the attempt that reported done; 0: none yet
	watchErrs atomic.Int64
}

type probeKey struct{}

// WithProbe returns a context carrying p: every Loop run with it, or with a context
// derived from it, reports to p.
func WithProbe(ctx context.Context, p *Probe) context.Context {
	return context.WithValue(ctx, probeKey{}, p)
}

func (p *Probe) tried(why Why, done bool, err error) {
	p.counts[why].Add(1)
	if done && err == nil {
		p.won.Store(int32(why) + 1)
	}
	if p.Tried != nil {
		p.Tried(why, done, err)
	}
}

// Attempts returns how many attempts ran for the reason why.
func (p *Probe) Attempts(why Why) int64 { return p.counts[why].Load() }

// Done reports why the latest attempt that reported done ran, and false (with First)
// if none has.
func (p *Probe) Done() (Why, bool) {
	w := p.won.Load()
	if w == 0 {
		return First, false
	}
	return Why(w - 1), true
}

// WatchErrors returns how many watches failed.
func (p *Probe) WatchErrors() int64 { return p.watchErrs.Load() }

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

// Ended is ctx.Err(), or context.DeadlineExceeded once ctx's deadline has passed
// although the timer that ends ctx has not run yet: on a busy machine a network
// deadline taken from ctx's can fire first, and a step it cut must read as cut by ctx.
func Ended(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl) {
		return context.DeadlineExceeded
	}
	return nil
}
