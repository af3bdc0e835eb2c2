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
// A SWR of the same key and cache that misses inside fn (on fn's ctx, or one made from
// it, a background refresh's too) would wait for itself: it returns an error matching
// [ErrReentrant] at once.
//
// The freshness mark is a record of the key's own, key + ".|fresh" (a name no application
// key can take), with the Fresh TTL; [Cache.RemoveMarks] removes it, so that the next
// read refreshes the value.
func SWR[T any](ctx context.Context, c *Cache, key string, o SWROptions, fn func(context.Context) (T, error)) (T, error) {
	var zero T
	start := c.m.sampleStart()
	if o.Fresh <= 0 || o.Stale <= o.Fresh {
		return zero, opError(opSWR, key, fmt.Errorf("%w: need 0 < Fresh < Stale, got Fresh %v, Stale %v", ErrInvalidTTL, o.Fresh, o.Stale))
	}
	o.Fresh, o.Stale = capTTL(o.Fresh), capTTL(o.Stale)
	d, k, err := c.prepTagged(ctx, o.Driver, key, nil)
	if err != nil {
		return zero, d.fail(opSWR, key, err)
	}
	fk := recordKey(k, recFresh)
	vals, found, err := getMany(ctx, d, []string{k, fk})
	if err != nil {
		c.done(opSWR, d, key, 0, err, start)
		if !c.readFailsOpen(ctx, opSWR, d, key, err) {
			return zero, d.fail(opSWR, key, err)
		}
		found = []bool{false, false} // the store is out of reach: load, once per key
	}
	// The load's events are not timed: the read's event was.
	l := &loadCall[T]{c: c, op: opSWR, d: d, key: key, k: k, fn: fn, storeDown: err != nil}
	if found[0] {
		return swrHit(ctx, l, vals[0], found[1], o, start)
	}
	c.done(opSWR, d, key, EventMiss, nil, start)
	return swrMiss(ctx, l, o)
}

// swrHit returns the value v that SWR found, and starts a background refresh unless it
// is fresh.
func swrHit[T any](ctx context.Context, l *loadCall[T], v any, fresh bool, o SWROptions, start stamp) (T, error) {
	var t T
	err := l.d.decode(v, &t)
	l.c.done(opSWR, l.d, l.key, EventHit, err, start)
	if err != nil {
		return t, l.d.fail(opSWR, l.key, err)
	}
	if !fresh {
		l.c.refresh(ctx, l.flightKey(), func(rctx context.Context) error {
			return l.refreshJob(rctx, o)
		}, func(err error) {
			if o.OnRefreshError != nil {
				o.OnRefreshError(l.key, err)
			}
		})
	}
	return t, nil
}

// swrMiss is SWR's cold load: one load for every concurrent caller, as Remember's.
func swrMiss[T any](ctx context.Context, l *loadCall[T], o SWROptions) (T, error) {
	c, d, k, key := l.c, l.d, l.k, l.key
	ctx, over, err := l.enter(ctx) // for fn's nested calls
	if err != nil {
		var zero T
		return zero, err
	}
	defer over()
	return l.shared(ctx, func() (any, error) {
		// A caller that missed just before a previous flight stored the value. Any error
		// stops the load: what could not be read or decoded is never overwritten. After a
		// first read that failed open, the loader runs without another read.
		if l.storeDown {
			return l.loadStore(ctx, func(ctx context.Context, t T) error { return c.storeSWR(ctx, d, k, t, o) })
		}
		if v, found, err := d.d.Get(ctx, k); err != nil {
			if err = c.soft(ctx, opSWR, d, key, err); err != nil {
				return nil, err
			}
		} else if found {
			var t T
			if err := d.decode(v, &t); err != nil {
				return nil, err
			}
			return t, nil
		}
		return l.loadStore(ctx, func(ctx context.Context, t T) error { return c.storeSWR(ctx, d, k, t, o) })
	})
}

// refreshJob is the background refresh of a stale value: fn runs and its result is
// stored, unless another refresh already did. Its failure is reported as an error event
// (nobody else hears of it) and returned for OnRefreshError.
func (l *loadCall[T]) refreshJob(ctx context.Context, o SWROptions) error {
	c, d := l.c, l.d
	// A read that saw the value stale just before another refresh stored it would
	// refresh it again: the mark says whether that already happened.
	if _, fresh, err := d.d.Get(ctx, recordKey(l.k, recFresh)); err == nil && fresh {
		return nil
	}
	ctx, over := markInFlight(ctx, c.m, l.op, d, l.k) // for fn's nested calls
	defer over()
	t, err := flight.Call(ctx, l.fn)
	if err == nil {
		err = c.storeSWR(ctx, d, l.k, t, o)
		c.done(l.op, d, l.key, EventSet, err, 0)
	} else {
		c.done(l.op, d, l.key, 0, err, 0)
	}
	return err
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
