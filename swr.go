package cache

import (
	"context"
	"fmt"
	"time"

	"github.com/cachekit/cache/driver"
	"github.com/cachekit/cache/internal/flight"
)

// SWROptions are the options of [SWR].
type SWROptions struct {
	// Fresh is how long a loaded value is served without a refresh. Required (> 0).
	Fresh time.Duration
	// Stale is how long the value lives in all: between Fresh and Stale it is served at
	// once while one background refresh runs. Required (> Fresh).
	Stale time.Duration
	// Driver routes the call to the named driver; c's current driver is unchanged.
	Driver string
	// OnRefreshError is told when a background refresh fails; the stale value stays.
	// Default: the error is dropped.
	OnRefreshError func(key string, err error)
}

// SWR is stale-while-revalidate: it returns the value under key and keeps it fresh.
//
//   - Fresh (written less than Fresh ago): returned as it is.
//   - Stale (older than Fresh, younger than Stale): returned at once, and one background
//     refresh per key runs fn and stores its result. A failed refresh keeps the stale
//     value and is reported to OnRefreshError. Refreshes end when the cache is closed.
//   - Missing or expired: fn runs once for all concurrent callers (as in [Remember]), and
//     its result is stored.
//
// The freshness mark is a record of the key's own, key + ".|fresh" (a name no application
// key can take), with the Fresh TTL; [Cache.RemoveMarks] removes it, so that the next
// read refreshes the value.
func SWR[T any](ctx context.Context, c *Cache, key string, o SWROptions, fn func(context.Context) (T, error)) (T, error) {
	var zero T
	start := c.m.sampleStart()
	if o.Fresh <= 0 || o.Stale <= o.Fresh {
		return zero, opError("SWR", key, fmt.Errorf("%w: need 0 < Fresh < Stale, got Fresh %v, Stale %v", ErrInvalidTTL, o.Fresh, o.Stale))
	}
	o.Fresh, o.Stale = capTTL(o.Fresh), capTTL(o.Stale)
	d, k, err := c.prepTagged(ctx, o.Driver, key, nil)
	if err != nil {
		return zero, d.fail("SWR", key, err)
	}
	fk := recordKey(k, recFresh)
	vals, found, err := getMany(ctx, d, []string{k, fk})
	storeDown := err != nil // the store was out of reach a moment ago: load without another read
	if storeDown {
		c.done("SWR", d, key, 0, err, start)
		if !c.readFailsOpen(ctx, "SWR", d, key, err) {
			return zero, d.fail("SWR", key, err)
		}
		found = []bool{false, false} // the store is out of reach: load, once per key
	}
	if found[0] {
		var t T
		err := d.decode(vals[0], &t)
		c.done("SWR", d, key, EventHit, err, start)
		if err != nil {
			return zero, d.fail("SWR", key, err)
		}
		if !found[1] {
			c.refresh(ctx, "swr\x00"+d.name+"\x00"+k, func(rctx context.Context) error {
				// A read that saw the value stale just before another refresh stored it
				// would refresh it again: the mark says whether that already happened.
				if _, fresh, err := d.d.Get(rctx, fk); err == nil && fresh {
					return nil
				}
				t, err := flight.Call(rctx, fn)
				if err == nil {
					err = c.storeSWR(rctx, d, k, t, o)
					c.done("SWR", d, key, EventSet, err, 0)
				} else {
					c.done("SWR", d, key, 0, err, 0) // the loader failed: nobody else hears of it
				}
				return err
			}, func(err error) {
				if o.OnRefreshError != nil {
					o.OnRefreshError(key, err)
				}
			})
		}
		return t, nil
	}
	c.done("SWR", d, key, EventMiss, nil, start)
	// Cold: one load for every concurrent caller, as Remember.
	load := func() (any, error) {
		if !storeDown {
			if t, found, err := swrReread[T](ctx, c, d, k, key); err != nil || found {
				return t, err
			}
		}
		t, err := flight.Call(ctx, fn)
		if err != nil {
			return t, err
		}
		err = c.storeSWR(ctx, d, k, t, o)
		if err != nil && c.failsOpen(ctx, err) {
			c.done("SWR", d, key, 0, err, 0)
			return t, nil // best effort: the store is out of reach
		}
		c.done("SWR", d, key, EventSet, err, 0)
		if err != nil {
			return t, &flight.Partial{Err: err}
		}
		return t, nil
	}
	return sharedLoad[T](ctx, c, d, "swr\x00"+d.name+"\x00"+k, "SWR", key, load)
}

// swrReread is SWR's read in the flight of a cold load: a caller that missed just
// before a previous flight stored the value finds it. Any error stops the load: what
// could not be read or decoded is never overwritten.
func swrReread[T any](ctx context.Context, c *Cache, d *namedDriver, k, key string) (T, bool, error) {
	var t T
	v, found, err := d.d.Get(ctx, k)
	if err != nil || !found {
		return t, false, c.soft(ctx, "SWR", d, key, err)
	}
	err = d.decode(v, &t)
	return t, err == nil, err
}

// refresh runs job in the background, once per flight at a time, on a context that
// keeps ctx's values but not its cancellation (the request may be gone before the job
// ends); Close cancels it and waits for it. A job that fails is handed to report once
// the refresh is over.
func (c *Cache) refresh(ctx context.Context, flight string, job func(context.Context) error, report func(error)) {
	m := c.m
	if _, loaded := m.refreshing.LoadOrStore(flight, struct{}{}); loaded {
		return
	}
	m.bgMu.Lock()
	if m.closed.Load() {
		m.bgMu.Unlock()
		m.refreshing.Delete(flight)
		return
	}
	m.bg.Add(1)
	m.bgMu.Unlock()
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(m.bgCtx, cancel)
	go func() {
		defer m.bg.Done()
		defer stop()
		defer cancel()
		var err error
		func() {
			defer func() { _ = recover() }() // a panicking refresh must not take the process down
			err = job(rctx)
		}()
		// The refresh is over before it is reported: a read after the report may start
		// the next one.
		m.refreshing.Delete(flight)
		if err != nil {
			func() {
				defer func() { _ = recover() }()
				report(err)
			}()
		}
	}()
}

// storeSWR writes the freshness mark, then the value: the other order would let a reader
// see a new value without its mark, take it for stale, and refresh it at once.
func (c *Cache) storeSWR(ctx context.Context, d *namedDriver, k string, v any, o SWROptions) error {
	if _, err := d.write(ctx, driver.Entry{Key: recordKey(k, recFresh), Value: true, TTL: o.Fresh}, Upsert); err != nil {
		return err
	}
	if _, err := d.write(ctx, driver.Entry{Key: k, Value: v, TTL: o.Stale}, Upsert); err != nil {
		return err
	}
	return c.indexTags(ctx, d, k, o.Stale, nil)
}

// getMany reads keys in one call when the driver can.
func getMany(ctx context.Context, d *namedDriver, keys []string) ([]any, []bool, error) {
	if d.batch != nil {
		return d.batch.GetMany(ctx, keys)
	}
	vals, found := make([]any, len(keys)), make([]bool, len(keys))
	for i, k := range keys {
		v, ok, err := d.d.Get(ctx, k)
		if err != nil {
			return nil, nil, err
		}
		vals[i], found[i] = v, ok
	}
	return vals, found, nil
}
