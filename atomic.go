package cache

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/cachekit/cache/driver"
	"github.com/cachekit/cache/internal/wait"
)

// Increment adds delta to the integer under key, atomically, and returns the new value.
// A missing key counts as 0 and is created with the driver's default TTL; an existing key
// keeps its remaining TTL. A key holding something other than an integer is an error
// matching [ErrNotInteger] and is left as it was. A driver without atomic counters returns
// an error matching [ErrUnsupported].
func (c *Cache) Increment(ctx context.Context, key string, delta int64) (int64, error) {
	return c.add(ctx, "Increment", key, delta)
}

// Decrement subtracts delta from the integer under key, atomically, as [Cache.Increment]
// adds. It does not stop at zero.
func (c *Cache) Decrement(ctx context.Context, key string, delta int64) (int64, error) {
	if delta == math.MinInt64 {
		return 0, opError("Decrement", key, fmt.Errorf("%w: delta %d cannot be negated", ErrNotInteger, delta))
	}
	return c.add(ctx, "Decrement", key, -delta)
}

func (c *Cache) add(ctx context.Context, op, key string, delta int64) (int64, error) {
	start := c.m.sampleStart()
	d, k, err := c.prep(ctx, "", key)
	if err != nil {
		return 0, d.fail(op, key, err)
	}
	n, err := d.atomic.Increment(ctx, k, delta, d.defTTL)
	c.done(op, d, key, EventSet, err, start)
	if err != nil {
		return 0, d.fail(op, key, err)
	}
	return n, nil
}

// ErrConflict: Modify ran out of attempts because other writers kept changing the key
// between its read and its compare-and-swap.
var ErrConflict = errors.New("cache: too many concurrent writers")

// DeleteKey is returned by a Modify function to delete the key.
var DeleteKey = errors.New("cache: delete the key")

// ModifyOptions are the options of [ModifyWith].
type ModifyOptions struct {
	// TTL is the value's TTL after the write. 0: an existing key keeps its remaining TTL,
	// and a new key gets NewTTL. Negative: ErrInvalidTTL.
	TTL time.Duration
	// NewTTL is the TTL of a key that Modify creates, when TTL is 0. 0: the driver's
	// default TTL.
	NewTTL time.Duration
	// Driver routes the call to the named driver; c's current driver is unchanged.
	Driver string
	// MaxAttempts bounds the compare-and-swap attempts on drivers without an atomic
	// in-process update (Redis, file); between attempts Modify backs off with jitter
	// (50 µs doubling to 5 ms). 0: the default, 100. Negative: an error matching
	// ErrInvalidConfig, before the key is read.
	MaxAttempts int

	forever bool   // the key never expires (the tag indexes), whatever TTL and the default
	op      string // the Op of its events: "" is "Modify"
	silent  bool   // no events: the cache's own bookkeeping (the tag indexes)
}

// Modify is an atomic read-modify-write of key: fn gets the current value (found false
// when the key is missing or expired) and returns the new one, which is written only if
// nothing else changed the key meanwhile. It returns what was written.
//
//   - fn returning [DeleteKey] deletes the key; any other error leaves the key alone and
//     is returned.
//   - By default the key keeps its remaining TTL (a new key gets the default TTL); see
//     [ModifyOptions].
//   - On the in-process drivers fn runs once, while the driver holds the key: it must be
//     quick and must not use the cache. cur may share memory with the stored value (the
//     in-process drivers keep Go values): return a changed copy of a map or slice, never
//     change it in place, or readers see the change, and see it even if fn then fails. On Redis and the file driver Modify reads, calls
//     fn, and compare-and-swaps, so fn may run more than once when writers race (up to
//     MaxAttempts, then [ErrConflict]); fn must not have side effects.
//
// It is atomic across every process sharing the store on Redis and the file driver, and
// within the process on the in-process drivers. A driver with neither an atomic update
// nor compare-and-swap returns an error matching [ErrUnsupported].
//
// (Other libraries call this operation update; here Update is the OnConflict value of
// SetOptions, so the read-modify-write is Modify.)
func Modify[T any](ctx context.Context, c *Cache, key string, fn func(cur T, found bool) (T, error)) (T, error) {
	return ModifyWith(ctx, c, key, ModifyOptions{}, fn)
}

// ModifyWith is [Modify] with options.
func ModifyWith[T any](ctx context.Context, c *Cache, key string, o ModifyOptions, fn func(cur T, found bool) (T, error)) (T, error) {
	var zero T
	if o.TTL < 0 || o.NewTTL < 0 {
		return zero, opError("Modify", key, fmt.Errorf("%w: TTL %v, NewTTL %v", ErrInvalidTTL, o.TTL, o.NewTTL))
	}
	if o.MaxAttempts < 0 {
		return zero, opError("Modify", key, fmt.Errorf("%w: MaxAttempts %d is negative", ErrInvalidConfig, o.MaxAttempts))
	}
	if o.MaxAttempts == 0 {
		o.MaxAttempts = 100
	}
	o.TTL, o.NewTTL = capTTL(o.TTL), capTTL(o.NewTTL)
	d, k, err := c.prep(ctx, o.Driver, key)
	if err != nil {
		return zero, d.fail("Modify", key, err)
	}
	return modify(ctx, c, d, k, key, o, fn)
}

// modify is ModifyWith on a resolved driver and final key k. It reports set when it
// wrote, removed when it deleted a live key, and error when it failed for another reason
// than fn's own error.
func modify[T any](ctx context.Context, c *Cache, d *namedDriver, k, key string, o ModifyOptions, fn func(cur T, found bool) (T, error)) (T, error) {
	start := c.m.sampleStart()
	var fnFailed bool // fn returned an error of its own: the caller's, not an event
	v, kind, err := modifyOn(ctx, d, k, key, o, func(cur T, found bool) (T, error) {
		next, err := fn(cur, found)
		fnFailed = err != nil && !errors.Is(err, DeleteKey)
		return next, err
	})
	if !o.silent && !(err != nil && fnFailed) {
		op := o.op
		if op == "" {
			op = "Modify"
		}
		c.done(op, d, key, kind, err, start)
	}
	return v, err
}

// modifyOn is modify's work. kind is EventSet when it wrote, EventRemoved when it
// deleted a live key, 0 when it changed nothing.
func modifyOn[T any](ctx context.Context, d *namedDriver, k, key string, o ModifyOptions, fn func(cur T, found bool) (T, error)) (out T, kind EventKind, _ error) {
	var zero T
	entry := func(v any) driver.Entry {
		if o.forever {
			return driver.Entry{Key: k, Value: v}
		}
		if o.TTL > 0 {
			return driver.Entry{Key: k, Value: v, TTL: o.TTL}
		}
		return driver.Entry{Key: k, Value: v, TTL: d.orDefault(o.NewTTL), KeepTTL: true}
	}
	// step decodes the stored value, calls fn, and encodes its result into v; del: fn
	// returned DeleteKey.
	step := func(old any, found bool) (next T, v any, del bool, err error) {
		var cur T
		if found {
			if err := d.decode(old, &cur); err != nil {
				return zero, nil, false, err
			}
		}
		if next, err = fn(cur, found); errors.Is(err, DeleteKey) {
			return zero, nil, true, nil
		} else if err != nil {
			return zero, nil, false, err
		}
		v, err = d.encode(next)
		return next, v, false, err
	}
	var err error
	if d.mod != nil {
		err = d.mod.Modify(ctx, k, func(old any, found bool) (driver.Change, error) {
			next, v, del, err := step(old, found)
			switch {
			case err != nil:
				return driver.Change{}, err
			case del:
				if found {
					kind = EventRemoved
				}
				return driver.Change{Delete: true}, nil
			}
			out, kind = next, EventSet
			return driver.Change{Entry: entry(v)}, nil
		})
	} else {
		// Read, then compare-and-swap; another writer that won the race gets a backoff
		// with jitter (50 µs doubling to 5 ms) to finish rather than a retry in lockstep.
		attempts := 0
		err = wait.Loop(ctx, nil, 50*time.Microsecond, 5*time.Millisecond, 0, false, func() (done bool, err error) {
			attempts++
			raw, found, err := d.d.Get(ctx, k)
			if err != nil {
				return false, err
			}
			next, v, del, err := step(raw, found)
			switch {
			case err != nil:
				return false, err
			case del && !found:
				out, kind = zero, 0
				return true, nil
			case del:
				done, err = d.atomic.CompareAndDelete(ctx, k, raw)
				out, kind = zero, EventRemoved
			case found:
				done, err = d.atomic.CompareAndSwap(ctx, raw, entry(v))
				out, kind = next, EventSet
			default:
				e := entry(v)
				e.KeepTTL = false
				done, err = d.atomic.SetIf(ctx, e, driver.IfAbsent)
				out, kind = next, EventSet
			}
			if err == nil && !done && attempts == o.MaxAttempts {
				err = fmt.Errorf("%w: %d compare-and-swap attempts failed", ErrConflict, o.MaxAttempts)
			}
			return done, err
		})
	}
	if err != nil {
		return zero, 0, d.fail("Modify", key, err)
	}
	return out, kind, nil
}
