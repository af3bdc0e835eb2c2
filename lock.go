package cache

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/cachekit/cache/driver"
	"github.com/cachekit/cache/internal/token"
	"github.com/cachekit/cache/internal/wait"
)

// ReleaseTimeout is the default of LockOptions.ReleaseTimeout: how long a release, and
// each [LockHandle.Extend], may wait on the store. Every release runs on a context
// detached from the caller's cancellation and deadline (context.WithoutCancel), with
// this timeout of its own, so that a request cancelled, or out of time, while fn ran
// still frees its lock at once instead of leaving it held for the whole TTL. An Extend
// keeps the caller's ctx, with a deadline no later than the timeout. A renewal by
// AutoExtend has a deadline of a third of the TTL.
const ReleaseTimeout = 5 * time.Second

// Lock errors. Match them with errors.Is.
var (
	// ErrNotAcquired: another holder has the lock. [Acquire] returns it; [Lock] reports a
	// held lock as Acquired == false with a nil error instead, unless it waited (Wait > 0)
	// and gave up, where the error also matches ErrWaitTimeout or the context's error.
	// An acquisition whose ctx ends before it has the lock, at whatever step (an
	// attempt, a read of the key, the wait), fails with an error that matches
	// ErrNotAcquired and the context's error, from [Lock] and [Acquire] alike.
	ErrNotAcquired = errors.New("cache: lock not acquired")
	// ErrWaitTimeout: LockOptions.Wait elapsed before the lock came free.
	ErrWaitTimeout = errors.New("cache: lock wait timed out")
	// ErrNotALock: the lock's key holds a value that is not a lock: one written by Set,
	// a counter, or data of another type. A held lock is a string (the holder's token,
	// or the owner label other libraries store); anything else would otherwise read as
	// a lock held forever. The value is left as it is.
	ErrNotALock = errors.New("cache: the key holds a value that is not a lock")
	// ErrLockNotHeld: Release, Extend or TTL of a lock that this holder no longer has (its
	// TTL ran out, or it was force-released).
	ErrLockNotHeld = errors.New("cache: lock not held")
	// ErrLockLost: the lock's lease ended while fn was running (it ran out without a
	// confirmed renewal, or a renewal found the lock gone or failed). fn's context is
	// cancelled with this cause; Lock's error, and [LockHandle.Release] after the
	// lease's end, match it.
	ErrLockLost = errors.New("cache: lock lost")
)

// LockOptions are the options of [LockWith] and [Acquire].
type LockOptions struct {
	// TTL is how long the lock lives if it is not released (or, with AutoExtend, not
	// renewed): the safety net when the process dies inside fn. Required: a TTL <= 0 is
	// ErrInvalidTTL and fn never runs.
	TTL time.Duration
	// Owner labels the holder, for people debugging stuck locks: the lock key holds a
	// string that starts with Owner, readable with Get and InspectLock.
	// Default: "pid.<pid>".
	Owner string
	// Driver routes the whole operation (acquire, renewals, release) to the named
	// driver; c's current driver is unchanged.
	Driver string
	// Wait blocks up to Wait for a held lock to come free, instead of giving up at once.
	// ctx still wins. Waiters wake when the holder releases (drivers whose Watch
	// reports releases) and otherwise poll with backoff and jitter.
	// Default: 0, try once.
	Wait time.Duration
	// AutoExtend renews the lock every TTL/3 while fn runs, so that fn may outlive the
	// TTL. Each confirmed renewal moves the lease (see [LockHandle.ValidUntil]) to the
	// renewal's send time + TTL − margin. If a renewal finds the lock gone, fails, or has
	// no answer within TTL/3, or the lease ends before a renewal is confirmed, fn's ctx
	// is cancelled with cause ErrLockLost. Without AutoExtend, fn's ctx is cancelled with
	// cause ErrLockLost when the lease ends, so that work does not silently go on
	// without the lock.
	AutoExtend bool
	// Fencing takes a fencing token with the lock: a number that grows with every
	// acquisition of the key, in every process sharing the store; read it with
	// HeldLock(ctx).FencingToken() inside fn (see [HeldLock]), or from the handle of
	// [Acquire]. Pass it to the storage you write to, and have it reject a token lower
	// than the highest it has seen. The driver keeps a counter per fenced key (see the
	// driver's docs).
	Fencing bool
	// ReleaseTimeout bounds the release (and, for a handle, each Extend): the release
	// runs on a context detached from the caller's, which neither its cancellation nor
	// its deadline cuts short, and gives up after ReleaseTimeout. A release that fails
	// leaves the lock to end at its TTL. It also bounds the clean-up of an acquiring
	// attempt cut by ctx (see [Lock]). Default: [ReleaseTimeout] (5 s); negative:
	// ErrInvalidConfig.
	ReleaseTimeout time.Duration
}

// LockOutcome is the result of [Lock] and [LockWith]. Value is set only when Acquired.
type LockOutcome[T any] struct {
	// Acquired reports whether this call took the lock and ran fn.
	Acquired bool
	// Value is what fn returned.
	Value T
}

var defaultOwner = "pid." + strconv.Itoa(os.Getpid())

// Lock takes the lock key for ttl, runs fn, and releases the lock, even when fn returns
// an error or panics (the panic goes on after the release).
//
// If another holder has the lock, fn does not run and Lock returns Acquired == false with
// a nil error. A driver failure is an error, never a silent Acquired == false. An
// acquisition cut by ctx (at whatever step) returns an error matching [ErrNotAcquired]
// and ctx's error; an attempt whose reply ctx cut off may have taken the lock on the
// store, so it is deleted again (its own token only, best effort, on a detached context
// bounded by the release timeout) rather than left held for its TTL. The lock is not
// re-entrant: a nested Lock of the same key inside fn gets Acquired == false, and with
// Wait an error matching [ErrReentrant] at once.
//
// The release removes only this holder's lock: each acquisition stores a unique token,
// and the release deletes the key only while it still holds that token, so if the TTL
// ran out and another holder took the key, its lock stays. The release never inherits
// ctx's cancellation or deadline: it runs on a context detached from ctx, bounded by
// LockOptions.ReleaseTimeout (default [ReleaseTimeout]). A release that fails is not
// Lock's error, since fn's work is done: Lock returns fn's value and error, reports the
// failure as an [EventError] (op "Release", with the lock's key and driver; counted in
// [Metrics].Errors), and the lock ends at its TTL.
//
// The holder keeps a lease by its own clock, which ends before the store can expire the
// key ([LockHandle.ValidUntil]), whatever the network or the driver's client does. fn's
// context is cancelled, with cause [ErrLockLost], when the lease ends while fn still
// runs; Lock's error then matches ErrLockLost too. Inside fn, check
// HeldLock(ctx).ValidUntil() before each step whose effects must not overlap another
// holder's. Use [LockWith] with AutoExtend for work that may outlive its TTL.
//
// Across which callers the lock excludes depends on the driver: every process that
// shares its store, or one process for an in-process driver (docs/drivers.md says which
// for each). A driver that stores nothing always acquires. A driver that cannot
// create-if-absent and compare-and-delete atomically (one without driver.Atomic) makes
// Lock return an error matching [ErrUnsupported].
func Lock[T any](ctx context.Context, c *Cache, key string, ttl time.Duration, fn func(context.Context) (T, error)) (LockOutcome[T], error) {
	return LockWith(ctx, c, key, LockOptions{TTL: ttl}, fn)
}

// LockWith is [Lock] with options: an owner label, a per-call driver, waiting,
// auto-extension and fencing.
func LockWith[T any](ctx context.Context, c *Cache, key string, o LockOptions, fn func(context.Context) (T, error)) (out LockOutcome[T], err error) {
	h, err := acquire(ctx, c, key, o)
	if err != nil {
		if o.Wait <= 0 && errors.Is(err, ErrNotAcquired) && !endedCtx(ctx, err) {
			return out, nil // a held lock is not an error; a ctx that ended is
		}
		return out, err
	}
	out.Acquired = true
	h.outer = HeldLock(ctx)
	ctx = context.WithValue(ctx, heldKey{}, h) // for HeldLock, and the reentrancy check
	fctx, stop := h.keepAlive(ctx, o.AutoExtend)
	defer func() {
		// Runs on return and on panic; a panic goes on after the release.
		stop()
		h.over.Store(true)
		lost := h.lost(fctx)
		// A release that failed was reported as an error event: fn's work is done, and
		// the lock ends at its TTL.
		if rerr := h.release(ctx); errors.Is(rerr, ErrLockNotHeld) && lost == nil && !h.lapsed() {
			// Gone before its lease ended, as the release's reply proves, without a
			// renewal noticing: force-released, deleted, or evicted. Another holder may
			// have run beside fn. (A release whose reply came after the lease's end
			// may have found the key expired on time: that is no loss.)
			lost = errGoneEarly
		}
		if lost == nil {
			return
		}
		c.done(opLock, h.d, key, EventLockLost, nil, 0)
		if errors.Is(err, lost) {
			lost = nil // fn returned context.Cause(ctx): say it once
		}
		err = h.d.fail(opLock, key, errors.Join(err, lost))
	}()
	out.Value, err = fn(fctx)
	return out, err
}

func acquire(ctx context.Context, c *Cache, key string, o LockOptions) (*LockHandle, error) {
	start := c.m.sampleStart()
	if o.TTL <= 0 {
		return nil, opError(opLock, key, fmt.Errorf("%w: a lock needs a TTL > 0, got %v", ErrInvalidTTL, o.TTL))
	}
	if o.Wait < 0 {
		return nil, opError(opLock, key, fmt.Errorf("%w: Wait %v is negative", ErrInvalidConfig, o.Wait))
	}
	if o.ReleaseTimeout < 0 {
		return nil, opError(opLock, key, negativeReleaseTimeout(o.ReleaseTimeout))
	}
	o.TTL = capTTL(o.TTL)
	d, k, err := c.prep(ctx, o.Driver, key)
	if err != nil {
		if ctxEnded(ctx) != nil {
			err = gaveUp(ctx, err)
		}
		return nil, d.fail(opLock, key, err)
	}
	if ctx.Err() != nil { // a caller that has gone away takes no lock
		return nil, d.fail(opLock, key, gaveUp(ctx, nil))
	}
	if o.Wait > 0 {
		if err := lockReentered(ctx, c.m, d, k); err != nil {
			return nil, d.fail(opLock, key, err)
		}
	}
	owner := o.Owner
	if owner == "" {
		owner = defaultOwner
	}
	h := &LockHandle{m: c.m, d: d, key: key, final: k, token: token.New(owner), ttl: o.TTL, timeout: o.ReleaseTimeout}
	if h.stored, err = d.encodeString(h.token); err != nil {
		return nil, d.fail(opLock, key, err)
	}
	ok, err := h.try(ctx, o.Fencing)
	if err == nil && !ok {
		err = holdsLock(ctx, d, k)
	}
	if err != nil && ctxEnded(ctx) != nil {
		err = gaveUp(ctx, err) // the attempt or the check was cut by ctx
	}
	if err != nil {
		c.done(opLock, d, key, 0, err, start)
		return nil, d.fail(opLock, key, err)
	}
	if ok {
		c.done(opLock, d, key, EventLockAcquired, nil, start)
		return h, nil
	}
	c.done(opLock, d, key, EventLockContended, nil, start)
	if o.Wait <= 0 {
		return nil, d.fail(opLock, key, ErrNotAcquired)
	}
	switch err := waitLoop(ctx, d, k, o.Wait, true, func() (bool, error) { return h.try(ctx, o.Fencing) }); {
	case err == wait.ErrOver:
		return nil, d.fail(opLock, key, fmt.Errorf("%w: %w after %v", ErrNotAcquired, ErrWaitTimeout, o.Wait))
	case err != nil && ctxEnded(ctx) != nil:
		return nil, d.fail(opLock, key, gaveUp(ctx, err))
	case err != nil:
		c.done(opLock, d, key, 0, err, start)
		return nil, d.fail(opLock, key, err)
	}
	c.done(opLock, d, key, EventLockAcquired, nil, start)
	return h, nil
}

// gaveUp is acquire's error when ctx ended before the lock was taken, whatever step it
// cut (the key's scope, an attempt, the check that the key holds a lock, the wait):
// it matches ErrNotAcquired, ctx's error and its cause, and keeps err, the step's own
// error (a driver's "context deadline exceeded"), if any. The rule is the manager's, so
// that it holds for every driver, however its calls report a ctx that ends.
func gaveUp(ctx context.Context, err error) error {
	joined := errors.Join(ErrNotAcquired, err)
	for _, e := range []error{context.Cause(ctx), ctxEnded(ctx)} {
		if e != nil && !errors.Is(joined, e) {
			joined = errors.Join(joined, e)
		}
	}
	return joined
}

// endedCtx reports whether err is acquire's error for a ctx that ended ([gaveUp]),
// rather than plain contention.
func endedCtx(ctx context.Context, err error) bool {
	ended := ctxEnded(ctx)
	return ended != nil && errors.Is(err, ended)
}

// ctxEnded is [wait.Ended]: ctx's end, including a deadline whose timer has yet to run.
func ctxEnded(ctx context.Context) error { return wait.Ended(ctx) }

// holdsLock checks, after an attempt found key taken, that it holds a lock: a string
// (our token, or the owner label that other libraries store), or nothing any more.
func holdsLock(ctx context.Context, d *namedDriver, key string) error {
	v, found, err := d.d.Get(ctx, key)
	if err != nil {
		return notALock(err)
	}
	if !found {
		return nil // released or expired since the attempt
	}
	var s string
	if err := d.decode(v, &s); err != nil {
		return fmt.Errorf("%w: %w", ErrNotALock, err)
	}
	return nil
}

// try makes one attempt to take the lock.
func (h *LockHandle) try(ctx context.Context, fencing bool) (ok bool, err error) {
	h.since = time.Now()
	e := driver.Entry{Key: h.final, Value: h.stored, TTL: h.ttl, NoSlide: true}
	if fencing {
		h.fence, ok, err = h.d.atomic.CreateFenced(ctx, e)
	} else {
		ok, err = h.d.atomic.SetIf(ctx, e, driver.IfAbsent)
	}
	if ok && err == nil {
		h.until.Store(h.leaseEnd(h.since, h.ttl))
	}
	h.abandonIfCut(ctx, err)
	return ok, notALock(err)
}

// abandonIfCut deletes what an attempt to take the lock (or a marker) that ctx cut may
// have written: the store may have taken it before the reply was lost, and it would
// then stay held for its TTL by nobody. err is the attempt's error; nothing is done
// unless ctx has ended and err is set. The delete removes only this holder's token and
// runs in the background, on a context detached from ctx, bounded by the release
// timeout, so that the caller, whose ctx has ended, does not wait for it; a failure is
// left to the TTL.
func (h *LockHandle) abandonIfCut(ctx context.Context, err error) {
	if err == nil || ctx.Err() == nil {
		return
	}
	dctx, cancel := detached(ctx, h.releaseTimeout())
	go func() {
		defer cancel()
		_, _ = h.d.atomic.CompareAndDelete(dctx, h.final, h.stored)
	}()
}

// notALock makes a driver's error about foreign data under a lock's key match
// ErrNotALock too.
func notALock(err error) error {
	if errors.Is(err, driver.ErrForeign) {
		return fmt.Errorf("%w: %w", ErrNotALock, err)
	}
	return err
}

// waitLoop is the one wait loop of the package (Lock's Wait, distributed Remember, Once):
// [wait.Loop] on key's watch, with a backoff doubling from 10 ms to 250 ms (the poll is
// the safety net for expiry and unreported deletes, which no watch sees, and the only
// wake-up where the driver's Watch fails or is unsupported).
func waitLoop(ctx context.Context, d *namedDriver, key string, limit time.Duration, watchFirst bool, attempt func() (done bool, err error)) error {
	watch := func(ctx context.Context) (<-chan struct{}, error) { return d.atomic.Watch(ctx, key) }
	return wait.Loop(ctx, watch, 10*time.Millisecond, 250*time.Millisecond, limit, watchFirst, attempt)
}
