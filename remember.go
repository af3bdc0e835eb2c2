package cache

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cachekit/cache/driver"
)

// Remember returns the value under key, or on a miss runs fn, stores its result for ttl
// (0: the driver's default) and returns it.
//
// However many goroutines miss the same key at once, fn runs once (per driver and final
// key, in this process) and every one of them gets its result. If fn returns an error,
// every waiting caller gets that error and nothing is stored. A caller whose ctx ends
// while it waits returns ctx's error; if the goroutine running fn had its own ctx
// cancelled, the other waiters do not inherit that cancellation: one of them runs fn
// again. If fn panics, the goroutine that started the load panics with the same value and
// the other waiters get an error.
//
// If the value was computed but could not be stored, Remember returns the value together
// with the error. A failed read (the store is down) is returned as an error without
// running fn.
//
// WARNING: fn must not call Remember for the same key: it would wait for itself.
func Remember[T any](ctx context.Context, c *Cache, key string, ttl time.Duration, fn func(context.Context) (T, error)) (T, error) {
	var zero T
	if ttl < 0 {
		return zero, opError("Remember", key, fmt.Errorf("%w: %v is negative", ErrInvalidTTL, ttl))
	}
	d, k, err := c.prep(ctx, "", key)
	if err != nil {
		return zero, opError("Remember", key, err)
	}
	if ttl == 0 {
		ttl = d.defTTL
	}
	read := func() (T, bool, error) {
		var t T
		v, found, err := d.d.Get(ctx, k)
		if err != nil || !found {
			return t, false, err
		}
		return t, true, d.decode(v, &t)
	}
	if t, found, err := read(); err != nil {
		return zero, opError("Remember", key, err)
	} else if found {
		return t, nil
	}

	for {
		var ran bool // set by the goroutine that runs the flight; read after <-ch
		ch := c.m.flights.DoChan(d.name+"\x00"+k, func() (any, error) {
			ran = true
			// A caller that missed just after a previous flight stored the value.
			if t, found, err := read(); err == nil && found {
				return t, nil
			}
			t, err := callLoader(ctx, fn)
			if err != nil {
				return t, err
			}
			if _, err := d.write(ctx, driver.Entry{Key: k, Value: t, TTL: ttl}, Upsert); err != nil {
				return t, &storeError{err}
			}
			return t, nil
		})
		var res resultT
		select {
		case r := <-ch:
			res = resultT{r.Val, r.Err}
		case <-ctx.Done():
			return zero, opError("Remember", key, context.Cause(ctx))
		}
		val, _ := res.val.(T) // a nil interface value does not assert
		if res.err == nil {
			return val, nil
		}
		var pe *panicError
		if errors.As(res.err, &pe) {
			if ran {
				panic(pe.value)
			}
			return zero, opError("Remember", key, res.err)
		}
		var se *storeError
		if errors.As(res.err, &se) {
			return val, opError("Remember", key, se.err)
		}
		// Another caller's cancellation is not ours: run the load again.
		if !ran && ctx.Err() == nil && isContextErr(res.err) {
			continue
		}
		return zero, opError("Remember", key, res.err)
	}
}

type resultT struct {
	val any
	err error
}

// storeError marks a value that was computed but not stored.
type storeError struct{ err error }

func (e *storeError) Error() string { return "store: " + e.err.Error() }
func (e *storeError) Unwrap() error { return e.err }

// panicError carries a loader's panic to the caller that started the load.
type panicError struct{ value any }

func (e *panicError) Error() string { return fmt.Sprintf("loader panicked: %v", e.value) }

func callLoader[T any](ctx context.Context, fn func(context.Context) (T, error)) (t T, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &panicError{r}
		}
	}()
	return fn(ctx)
}

func isContextErr(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}
