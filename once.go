package cache

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/cachekit/cache/driver"
	"github.com/cachekit/cache/internal/token"
)

// OnceOutcome is the result of [Once].
type OnceOutcome[T any] struct {
	// Ran reports whether this call ran fn. When false, Value is the result of the call
	// that did.
	Ran bool
	// Value is fn's result: this call's, or the first successful call's.
	Value T
}

// OnceOptions are the options of [OnceWith].
type OnceOptions struct {
	// TTL is how long the result is remembered: within it, fn does not run again for the
	// key. Required (> 0).
	TTL time.Duration
	// LockTTL bounds how long a crashed runner blocks the key: while fn runs the key holds
	// a pending marker with this TTL, renewed every LockTTL/3. Default: 30s, or TTL if
	// shorter.
	LockTTL time.Duration
	// Driver routes the call to the named driver; c's current driver is unchanged.
	Driver string
}

// onceDone is the record a successful run leaves under the key, for TTL.
type onceDone[T any] struct {
	Once  bool `json:"once"`
	Value T    `json:"value"`
}

// oncePending is the owner of the marker token that holds the key while fn runs.
const oncePending = "once.pending"

// Once runs fn at most once per key within ttl, across every process that shares the
// store: idempotent webhook handling, payment capture. It is what a lock cannot give: a
// lock is released when fn returns, so a retry that arrives after the work finished runs
// it again; Once remembers the result for ttl, and later callers get it with Ran == false.
//
//   - If fn returns an error, nothing is remembered and the key is freed, so that a retry
//     can try again; the error goes to this caller only.
//   - Callers that arrive while fn runs wait for its result (or, if it fails, one of them
//     runs fn), until their ctx ends.
//   - If the runner dies, its pending marker expires after LockTTL and another caller runs
//     fn: at most once holds for runs that finish; a run that dies midway may have done
//     part of its work.
//   - A Once of the same key and cache called from inside fn (on fn's ctx, or one made
//     from it) returns an error matching [ErrReentrant] at once: it would otherwise wait
//     for its own caller forever, since the marker is renewed while fn runs.
//
// The result is stored with the cache's codec like any value. Once needs a driver with
// conditional writes, compare-and-swap, compare-and-delete and TTL extension (a driver
// that implements driver.Atomic); otherwise the error matches [ErrUnsupported].
func Once[T any](ctx context.Context, c *Cache, key string, ttl time.Duration, fn func(context.Context) (T, error)) (OnceOutcome[T], error) {
	return OnceWith(ctx, c, key, OnceOptions{TTL: ttl}, fn)
}

// OnceWith is [Once] with options.
func OnceWith[T any](ctx context.Context, c *Cache, key string, o OnceOptions, fn func(context.Context) (T, error)) (OnceOutcome[T], error) {
	var out OnceOutcome[T]
	start := c.m.sampleStart()
	if o.TTL <= 0 {
		return out, opError(opOnce, key, fmt.Errorf("%w: Once needs a TTL > 0, got %v", ErrInvalidTTL, o.TTL))
	}
	if o.LockTTL < 0 {
		return out, opError(opOnce, key, fmt.Errorf("%w: LockTTL %v is negative", ErrInvalidTTL, o.LockTTL))
	}
	o.TTL = capTTL(o.TTL)
	if o.LockTTL == 0 {
		o.LockTTL = min(30*time.Second, o.TTL)
	}
	o.LockTTL = capTTL(o.LockTTL)
	d, k, err := c.prep(ctx, o.Driver, key)
	if err != nil {
		return out, d.fail(opOnce, key, err)
	}
	if err := reentered(ctx, c.m, opOnce, d, k); err != nil {
		return out, d.fail(opOnce, key, err)
	}
	marker := token.New(oncePending)
	pending, err := d.encodeString(marker)
	if err != nil {
		return out, d.fail(opOnce, key, err)
	}
	h := &LockHandle{d: d, key: key, final: k, token: marker, stored: pending, ttl: o.LockTTL}
	if err := ctx.Err(); err != nil {
		return out, d.fail(opOnce, key, context.Cause(ctx))
	}
	// Create the pending marker, or read what the key holds: the result, or another
	// caller's marker (then wait for a change, and look again).
	var created, done bool
	var v T
	err = waitLoop(ctx, d, k, 0, false, func() (bool, error) {
		h.since = time.Now()
		var err error
		if created, err = d.atomic.SetIf(ctx, driver.Entry{Key: k, Value: pending, TTL: o.LockTTL, NoSlide: true}, driver.IfAbsent); err != nil || created {
			h.abandonIfCut(ctx, err)
			return created, err
		}
		done, v, err = readOnce[T](ctx, d, k)
		return done, err
	})
	switch {
	case err != nil && ctx.Err() != nil:
		return out, d.fail(opOnce, key, context.Cause(ctx))
	case err != nil:
		c.done(opOnce, d, key, 0, err, start)
		return out, d.fail(opOnce, key, err)
	case created:
		c.done(opOnce, d, key, EventMiss, nil, start)
		return runOnce(ctx, c, h, o.TTL, fn)
	}
	c.done(opOnce, d, key, EventHit, nil, start)
	return OnceOutcome[T]{Value: v}, nil
}

// runOnce runs fn under the pending marker h, then swaps in the result.
func runOnce[T any](ctx context.Context, c *Cache, h *LockHandle, ttl time.Duration, fn func(context.Context) (T, error)) (out OnceOutcome[T], err error) {
	ctx, over := markInFlight(ctx, c.m, opOnce, h.d, h.final)
	defer over()
	fctx, stop := h.keepAlive(ctx, true)
	v, err := func() (v T, err error) {
		defer func() {
			if r := recover(); r != nil {
				stop()
				_ = h.release(ctx) // free the key for a retry, then let the panic go on
				panic(r)
			}
		}()
		return fn(fctx)
	}()
	stop()
	if lost := context.Cause(fctx); errors.Is(lost, ErrLockLost) {
		// Another caller may be running fn now: say so, and keep what fn returned.
		return OnceOutcome[T]{Ran: true, Value: v}, h.d.fail(opOnce, h.key, errors.Join(err, lost))
	}
	if err != nil {
		if rerr := h.release(ctx); rerr != nil && !errors.Is(rerr, ErrLockNotHeld) {
			err = errors.Join(err, fmt.Errorf("free the key: %w", rerr))
		}
		return out, err
	}
	rec, err := h.d.encode(onceDone[T]{Once: true, Value: v})
	if err != nil {
		_ = h.release(ctx)
		return OnceOutcome[T]{Ran: true, Value: v}, h.d.fail(opOnce, h.key, err)
	}
	sctx, scancel := detached(ctx, ReleaseTimeout)
	defer scancel()
	swapped, err := h.d.atomic.CompareAndSwap(sctx, h.stored, driver.Entry{Key: h.final, Value: rec, TTL: ttl, NoSlide: true})
	if swapped || err != nil {
		c.done(opOnce, h.d, h.key, EventSet, err, 0)
	}
	switch {
	case err != nil:
		return OnceOutcome[T]{Ran: true, Value: v}, h.d.fail(opOnce, h.key, fmt.Errorf("store the result: %w", err))
	case !swapped:
		return OnceOutcome[T]{Ran: true, Value: v}, h.d.fail(opOnce, h.key, fmt.Errorf("%w: the pending marker was gone when fn returned", ErrLockLost))
	}
	return OnceOutcome[T]{Ran: true, Value: v}, nil
}

// readOnce reads the key's Once state: done with the result, or not (pending or gone).
func readOnce[T any](ctx context.Context, d *namedDriver, key string) (done bool, v T, err error) {
	raw, found, err := d.d.Get(ctx, key)
	if err != nil || !found {
		return false, v, err
	}
	var s string
	if d.decode(raw, &s) == nil {
		if strings.HasPrefix(s, oncePending+"#") {
			return false, v, nil
		}
		return false, v, fmt.Errorf("the key holds %q, not a Once record", s)
	}
	var rec onceDone[T]
	if err := d.decode(raw, &rec); err != nil || !rec.Once {
		return false, v, fmt.Errorf("the key does not hold a Once record: %v", err)
	}
	return true, rec.Value, nil
}
