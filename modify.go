package cache

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cachekit/cache/driver"
	"github.com/cachekit/cache/internal/wait"
)

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
	// MaxAttempts bounds the compare-and-swap attempts on drivers that do not implement
	// driver.Modifier; between attempts Modify backs off with jitter
	// (50 µs doubling to 5 ms). 0: the default, 100. Negative: an error matching
	// ErrInvalidConfig, before the key is read.
	MaxAttempts int

	forever bool      // the key never expires (the tag indexes), whatever TTL and the default
	op      operation // the Op of its events: opNone is opModify
	silent  bool      // no events: the cache's own bookkeeping (the tag indexes)
}

// Modify is an atomic read-modify-write of key: fn gets the current value (found false
// when the key is missing or expired) and returns the new one, which is written only if
// nothing else changed the key meanwhile. It returns what was written.
//
//   - fn returning [DeleteKey] deletes the key; any other error leaves the key alone and
//     is returned.
//   - By default the key keeps its remaining TTL (a new key gets the default TTL); see
//     [ModifyOptions].
//   - On a driver that implements driver.Modifier (the in-process ones) fn runs once,
//     while the driver holds the key: it must be quick and must not use the cache. cur
//     may share memory with the stored value (in-process drivers keep Go values): return
//     a changed copy of a map or slice, never change it in place, or readers see the
//     change, and see it even if fn then fails. On other drivers Modify reads, calls fn,
//     and compare-and-swaps, so fn may run more than once when writers race (up to
//     MaxAttempts, then [ErrConflict]); fn must not have side effects.
//
// It is atomic across every process that shares the store, or within the process on an
// in-process driver. A driver with neither an atomic update nor compare-and-swap returns
// an error matching [ErrUnsupported].
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
		return zero, opError(opModify, key, fmt.Errorf("%w: TTL %v, NewTTL %v", ErrInvalidTTL, o.TTL, o.NewTTL))
	}
	if o.MaxAttempts < 0 {
		return zero, opError(opModify, key, fmt.Errorf("%w: MaxAttempts %d is negative", ErrInvalidConfig, o.MaxAttempts))
	}
	if o.MaxAttempts == 0 {
		o.MaxAttempts = 100
	}
	o.TTL, o.NewTTL = capTTL(o.TTL), capTTL(o.NewTTL)
	d, k, err := c.prep(ctx, o.Driver, key)
	if err != nil {
		return zero, d.fail(opModify, key, err)
	}
	return modify(ctx, c, target{d: d, k: k, key: key}, o, fn)
}

// modify is ModifyWith on a resolved driver and final key k. It reports set when it
// wrote, removed when it deleted a live key, and error when it failed for another reason
// than fn's own error.
func modify[T any](ctx context.Context, c *Cache, at target, o ModifyOptions, fn func(cur T, found bool) (T, error)) (T, error) {
	start := c.m.sampleStart()
	var fnFailed bool // fn returned an error of its own: the caller's, not an event
	v, kind, err := modifyOn(ctx, at, o, func(cur T, found bool) (T, error) {
		next, err := fn(cur, found)
		fnFailed = err != nil && !errors.Is(err, DeleteKey)
		return next, err
	})
	if !o.silent && !(err != nil && fnFailed) {
		op := o.op
		if op == opNone {
			op = opModify
		}
		c.done(op, at.d, at.key, kind, err, start)
	}
	return v, err
}

// modStep is one step of a Modify: fn's result next, encoded as v, or del when fn
// returned DeleteKey.
type modStep[T any] struct {
	next T
	v    any
	del  bool
}

// modifyOn is modify's work. kind is EventSet when it wrote, EventRemoved when it
// deleted a live key, 0 when it changed nothing.
func modifyOn[T any](ctx context.Context, at target, o ModifyOptions, fn func(cur T, found bool) (T, error)) (out T, kind EventKind, _ error) {
	var zero T
	d, k := at.d, at.k
	entry := func(v any) driver.Entry {
		if o.forever {
			return driver.Entry{Key: k, Value: v}
		}
		if o.TTL > 0 {
			return driver.Entry{Key: k, Value: v, TTL: o.TTL}
		}
		return driver.Entry{Key: k, Value: v, TTL: d.orDefault(o.NewTTL), KeepTTL: true}
	}
	// step decodes the stored value, calls fn, and encodes its result.
	step := func(old any, found bool) (s modStep[T], err error) {
		var cur T
		if found {
			if err := d.decode(old, &cur); err != nil {
				return s, err
			}
		}
		if s.next, err = fn(cur, found); errors.Is(err, DeleteKey) {
			return modStep[T]{del: true}, nil
		} else if err != nil {
			return modStep[T]{}, err
		}
		s.v, err = d.encode(s.next)
		return s, err
	}
	var err error
	if d.mod != nil {
		err = d.mod.Modify(ctx, k, func(old any, found bool) (driver.Change, error) {
			s, err := step(old, found)
			switch {
			case err != nil:
				return driver.Change{}, err
			case s.del:
				if found {
					kind = EventRemoved
				}
				return driver.Change{Delete: true}, nil
			}
			out, kind = s.next, EventSet
			return driver.Change{Entry: entry(s.v)}, nil
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
			s, err := step(raw, found)
			switch {
			case err != nil:
				return false, err
			case s.del && !found:
				out, kind = zero, 0
				return true, nil
			case s.del:
				done, err = d.atomic.CompareAndDelete(ctx, k, raw)
				out, kind = zero, EventRemoved
			case found:
				done, err = d.atomic.CompareAndSwap(ctx, raw, entry(s.v))
				out, kind = s.next, EventSet
			default:
				e := entry(s.v)
				e.KeepTTL = false
				done, err = d.atomic.SetIf(ctx, e, driver.IfAbsent)
				out, kind = s.next, EventSet
			}
			if err == nil && !done && attempts == o.MaxAttempts {
				err = fmt.Errorf("%w: %d compare-and-swap attempts failed", ErrConflict, o.MaxAttempts)
			}
			return done, err
		})
	}
	if err != nil {
		return zero, 0, d.fail(opModify, at.key, err)
	}
	return out, kind, nil
}
