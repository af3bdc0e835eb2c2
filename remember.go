package cache

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cachekit/cache/driver"
	"github.com/cachekit/cache/internal/flight"
	"github.com/cachekit/cache/internal/token"
	"github.com/cachekit/cache/internal/wait"
)

// Remember returns the value under key, or on a miss runs fn, stores its result for ttl
// (0: the driver's default) and returns it.
//
// However many goroutines miss the same key at once, fn runs once (per driver and final
// key, in this process) and every one of them gets its result. If fn returns an error,
// every waiting caller gets that error and nothing is stored, whatever it wraps (a
// loader's own timeout wrapping context.DeadlineExceeded too). A caller whose ctx ends
// while it waits returns ctx's error; if fn fails after the ctx of the goroutine that
// started it ended, the other waiters do not inherit that cancellation: one of them runs
// fn again. If fn panics, the goroutine that started the load panics with the same value and
// the other waiters get an error.
//
// If the value was computed but could not be stored, Remember returns the value together
// with the error. A failed read (the store is down, or the key holds data the driver
// cannot read, such as another program's Redis hash) is returned as an error without
// running fn, whichever read meets it: Remember never overwrites what it could not read.
// So is a stored value that does not decode into T.
//
// Across processes, see [RememberWith] and RememberOptions.Distributed.
//
// A Remember of the same key and cache called from inside fn (on fn's ctx, or one made
// from it) would wait for itself: it returns an error matching [ErrReentrant] at once.
func Remember[T any](ctx context.Context, c *Cache, key string, ttl time.Duration, fn func(context.Context) (T, error)) (T, error) {
	return RememberWith(ctx, c, key, RememberOptions{TTL: ttl}, fn)
}

// RememberOptions are the options of [RememberWith].
type RememberOptions struct {
	// TTL is how long the value is stored. 0: the driver's default TTL.
	TTL time.Duration
	// Driver routes the call to the named driver; c's current driver is unchanged.
	Driver string
	// Distributed extends the one-load-per-key promise across processes: on a miss, the
	// process that takes a short lock (a record of the key's own, key + ".|remember-lock",
	// for LockTTL) loads and
	// stores the value; the others wait for it to appear and read it. A process that has
	// waited WaitTimeout without seeing the value loads it itself, so a stuck or dead
	// loader costs the others one WaitTimeout, never an outage. Worth it on shared drivers
	// (those whose store other processes see) when a load is expensive; on in-process
	// drivers it adds nothing.
	// It costs a lock round trip per miss. Default: false.
	Distributed bool
	// LockTTL is the TTL of the distributed load lock. Default: 30s.
	LockTTL time.Duration
	// WaitTimeout bounds how long a process waits for another's load. Default: LockTTL.
	WaitTimeout time.Duration
	// NegativeTTL turns on negative caching: when fn returns an error matching
	// [ErrNotFound] (the thing does not exist), that is remembered for NegativeTTL in a
	// record of the key's own (key + ".|none", a name no application key can take), and
	// calls within it return ErrNotFound without running fn. Storing the value later
	// does not clear the mark: keep NegativeTTL short, or call [Cache.RemoveMarks] with
	// the key when you create the thing. Default: 0, off.
	NegativeTTL time.Duration
}

// ErrNotFound is returned by a Remember loader to say that the thing it loads does not
// exist; with RememberOptions.NegativeTTL that answer is cached too.
var ErrNotFound = errors.New("cache: not found")

// RememberWith is [Remember] with options: a per-call driver, and cross-process
// single-flight (Distributed).
func RememberWith[T any](ctx context.Context, c *Cache, key string, o RememberOptions, fn func(context.Context) (T, error)) (T, error) {
	var zero T
	start := c.m.sampleStart()
	if o.TTL < 0 || o.LockTTL < 0 || o.WaitTimeout < 0 || o.NegativeTTL < 0 {
		return zero, opError(opRemember, key, fmt.Errorf("%w: TTL, LockTTL, WaitTimeout and NegativeTTL must not be negative", ErrInvalidTTL))
	}
	if o.LockTTL == 0 {
		o.LockTTL = 30 * time.Second
	}
	if o.WaitTimeout == 0 {
		o.WaitTimeout = o.LockTTL
	}
	o.TTL, o.LockTTL, o.NegativeTTL = capTTL(o.TTL), capTTL(o.LockTTL), capTTL(o.NegativeTTL)
	d, scope, err := c.prepScope(ctx, o.Driver, key)
	if err == nil {
		err = c.checkTags(d, nil)
	}
	if err != nil {
		return zero, d.fail(opRemember, key, err)
	}
	// The hit path, without closures: one interface call and, on an in-process driver,
	// a type assertion.
	r, err := d.readAt(ctx, scope, key)
	if kind := eventKind(r.found, err); c.m.wants(kind) {
		c.m.end(opRemember, d, key, kind, err, start)
	}
	if err != nil {
		if !c.readFailsOpen(ctx, opRemember, d, key, err) {
			return zero, d.fail(opRemember, key, err)
		}
		o.Distributed = false // the store is out of reach: load here, once per key
	}
	if err == nil && r.found {
		t, err := valueAs[T](d, r)
		if err != nil {
			return zero, d.fail(opRemember, key, err)
		}
		return t, nil
	}
	l := &loadCall[T]{c: c, op: opRemember, d: d, key: key, k: join(scope, key), fn: fn, start: start, storeDown: err != nil}
	return rememberMiss(ctx, l, o)
}

// rememberMiss is Remember's miss path: single-flight in the process, and across
// processes with Distributed.
func rememberMiss[T any](ctx context.Context, l *loadCall[T], o RememberOptions) (T, error) {
	var zero T
	ctx, over, err := l.enter(ctx) // for fn's nested calls
	if err != nil {
		return zero, err
	}
	defer over()
	// A recent load found nothing: say so again without loading.
	if err := noneMarked(ctx, l, o); err != nil {
		return zero, l.d.fail(opRemember, l.key, err)
	}
	read := func() (T, bool, error) { return rememberRead(ctx, l, o) }
	load := func() (any, error) { return rememberLoad(ctx, l, o) }
	return l.shared(ctx, func() (any, error) {
		// A caller that missed just after a previous flight stored the value (or found
		// nothing). Any error stops the load: a key the driver cannot read (another
		// program's data) or a value that does not decode is never overwritten.
		if l.storeDown {
			return load()
		}
		if t, found, err := read(); err != nil || found {
			return t, err
		}
		if o.Distributed {
			return loadDistributed(ctx, l.d, l.k, o, read, load)
		}
		return load()
	})
}

// rememberRead looks for a value another caller stored, or, with NegativeTTL, its mark
// that the load found nothing (ErrNotFound): a caller that waited for another process's
// load takes that answer too, rather than load again.
func rememberRead[T any](ctx context.Context, l *loadCall[T], o RememberOptions) (T, bool, error) {
	var t T
	r, err := l.d.read(ctx, l.k)
	if err != nil {
		return t, false, l.c.soft(ctx, opRemember, l.d, l.key, err)
	}
	if r.found {
		t, err := decodeT[T](l.d, r)
		return t, true, err
	}
	return t, false, noneMarked(ctx, l, o)
}

// noneMarked returns ErrNotFound when, with NegativeTTL, the key's negative mark says
// that a recent load found nothing. A failed read of the mark is its error, unless the
// call fails open.
func noneMarked[T any](ctx context.Context, l *loadCall[T], o RememberOptions) error {
	if o.NegativeTTL <= 0 || l.storeDown {
		return nil
	}
	_, none, err := l.d.d.Get(ctx, recordKey(l.k, recNone))
	if err != nil {
		return l.c.soft(ctx, opRemember, l.d, l.key, err)
	}
	if none {
		return ErrNotFound
	}
	return nil
}

// rememberLoad runs fn and stores its result for the TTL; with NegativeTTL, fn's
// ErrNotFound leaves the key's negative mark instead.
func rememberLoad[T any](ctx context.Context, l *loadCall[T], o RememberOptions) (any, error) {
	c, d := l.c, l.d
	ttl := d.orDefault(o.TTL)
	t, err := l.loadStore(ctx, func(ctx context.Context, t T) error {
		if _, err := d.write(ctx, driver.Entry{Key: l.k, Value: t, TTL: ttl}, Upsert); err != nil {
			return err
		}
		return c.indexTags(ctx, d, l.k, ttl, nil)
	})
	var stored *flight.Partial
	if o.NegativeTTL > 0 && errors.Is(err, ErrNotFound) && !errors.As(err, &stored) {
		mark := driver.Entry{Key: recordKey(l.k, recNone), Value: true, TTL: o.NegativeTTL}
		if _, werr := d.write(ctx, mark, Upsert); c.soft(ctx, opRemember, d, l.key, werr) != nil {
			return t, errors.Join(err, fmt.Errorf("store the negative mark: %w", werr))
		}
	}
	return t, err
}

// loadDistributed loads under a cross-process lock, or waits for another process's load.
func loadDistributed[T any](ctx context.Context, d *namedDriver, k string, o RememberOptions, read func() (T, bool, error), load func() (any, error)) (any, error) {
	token, err := d.encodeString(token.New(defaultOwner))
	if err != nil {
		return nil, err
	}
	h := &LockHandle{d: d, key: k, final: recordKey(k, recLock), stored: token, ttl: o.LockTTL}
	var found bool // another process's load stored the value
	var t T
	err = waitLoop(ctx, d, h.final, o.WaitTimeout, false, func() (bool, error) {
		ok, err := d.atomic.SetIf(ctx, driver.Entry{Key: h.final, Value: token, TTL: o.LockTTL, NoSlide: true}, driver.IfAbsent)
		h.abandonIfCut(ctx, err)
		if err != nil || ok {
			return ok, err
		}
		// Another process loads: done when it has stored the value (or found it missing).
		t, found, err = read()
		return found, err
	})
	switch {
	case err == wait.ErrOver:
		return load() // the other loader is stuck or gone: do it ourselves
	case err != nil:
		return nil, err
	case found:
		return t, nil
	}
	defer func() { _ = h.release(ctx) }()
	// Stored while we took the lock, or found to be missing (ErrNotFound); any other
	// error stops the load too, as in the flight.
	if t, found, err := read(); err != nil || found {
		return t, err
	}
	return load()
}
