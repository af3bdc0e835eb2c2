package cache

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
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
// Across which callers the lock excludes depends on the driver: every process sharing a
// Redis, every process on one host for the file driver, one process for the in-process
// drivers. The null driver always acquires. A driver that cannot create-if-absent and
// compare-and-delete atomically makes Lock return an error matching [ErrUnsupported].
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
		c.done("Lock", h.d, key, EventLockLost, nil, 0)
		if errors.Is(err, lost) {
			lost = nil // fn returned context.Cause(ctx): say it once
		}
		err = h.d.fail("Lock", key, errors.Join(err, lost))
	}()
	out.Value, err = fn(fctx)
	return out, err
}

// lost returns why the lock was lost while fn ran (fctx's cause), errLeaseEnded when
// fn outlived the lease on a ctx that ended earlier (the caller's deadline) and went on
// regardless, or nil.
func (h *LockHandle) lost(fctx context.Context) error {
	if cause := context.Cause(fctx); errors.Is(cause, ErrLockLost) {
		return cause
	}
	if h.lapsed() {
		return errLeaseEnded
	}
	return nil
}

// errGoneEarly is Lock's error when the release found the lock already gone although no
// TTL ran out and no renewal failed.
var errGoneEarly = fmt.Errorf("%w: it was gone when fn returned (force-released, deleted or evicted)", ErrLockLost)

// errLeaseEnded is the cause fn's ctx gets when the lease ends without a confirmed
// renewal (without AutoExtend: at the lease's end).
var errLeaseEnded = fmt.Errorf("%w: its lease ended while fn was running", ErrLockLost)

// leaseMargin is what the lease keeps back from the TTL for the drift between the
// holder's clock and the store's: 1% of the TTL plus 2 ms (the allowance Redlock makes
// for clock drift, and a millisecond for the store's expiry granularity and one for
// timer wake-ups), at most half the TTL so that a very short lock keeps a lease.
func leaseMargin(ttl time.Duration) time.Duration {
	return min(ttl/100+2*time.Millisecond, ttl/2)
}

// leaseEnd returns the end of the lease of a request sent at sent for ttl, as
// nanoseconds from h.since, saturating instead of overflowing.
func (h *LockHandle) leaseEnd(sent time.Time, ttl time.Duration) int64 {
	from := int64(sent.Sub(h.since))
	d := int64(ttl - leaseMargin(ttl))
	if d > math.MaxInt64-from {
		return math.MaxInt64
	}
	return from + d
}

// LockHandle is a held lock, for work that does not fit in a closure: leader election, a
// long stream. Get one with [Acquire] (or [RestoreLock] in another process or goroutine
// that was handed the token). Its methods are safe for concurrent use. A nil *LockHandle
// holds nothing: its methods return ErrLockNotHeld.
type LockHandle struct {
	m      *manager
	d      *namedDriver
	key    string // as the caller gave it
	final  string // as the driver sees it
	token  string // "<owner>#<random>"
	stored any    // token, encoded for the driver
	ttl    time.Duration
	fence  int64
	since  time.Time // before the acquiring call: the lease is counted from here
	// until is the lease's end in nanoseconds from since; 0 while unknown (a
	// restored handle before its first Extend).
	until atomic.Int64
	// sent orders Extend calls: only the one sent last may set the lease.
	sent atomic.Int64
	// timeout bounds a release and an Extend; 0: ReleaseTimeout.
	timeout time.Duration
	// outer is the lock whose fn the acquiring call ran in, if any; over is set when
	// this lock's fn has returned. Together they find a nested Lock with Wait of the
	// same key (ErrReentrant).
	outer *LockHandle
	over  atomic.Bool
}

type heldKey struct{}

// Acquire takes the lock key and returns a handle to it; the caller releases it with
// [LockHandle.Release]. If another holder has it, Acquire returns an error matching
// [ErrNotAcquired] (after waiting up to o.Wait, if set). o.AutoExtend does not apply: call
// [LockHandle.Extend] yourself.
func Acquire(ctx context.Context, c *Cache, key string, o LockOptions) (*LockHandle, error) {
	o.AutoExtend = false
	return acquire(ctx, c, key, o)
}

// RestoreLock rebuilds the handle of a lock held elsewhere from its token (from
// [LockHandle.Token]), so that another goroutine or process can extend or release it
// without acquiring it again. It does not check that the lock is still held: call
// [LockHandle.TTL] for that. o.TTL, if set, is the default for Extend; o.Driver picks the
// driver; o.ReleaseTimeout bounds Release and Extend; the other options are ignored.
func RestoreLock(ctx context.Context, c *Cache, key, token string, o LockOptions) (*LockHandle, error) {
	if token == "" || !strings.Contains(token, "#") {
		return nil, opError("RestoreLock", key, fmt.Errorf("%w: %q is not a lock token", ErrInvalidKey, token))
	}
	if o.ReleaseTimeout < 0 {
		return nil, opError("RestoreLock", key, negativeReleaseTimeout(o.ReleaseTimeout))
	}
	d, k, err := c.prep(ctx, o.Driver, key)
	if err != nil {
		return nil, d.fail("RestoreLock", key, err)
	}
	stored, err := d.encodeString(token)
	if err != nil {
		return nil, d.fail("RestoreLock", key, err)
	}
	return &LockHandle{m: c.m, d: d, key: key, final: k, token: token, stored: stored, ttl: capTTL(o.TTL), since: time.Now(), timeout: o.ReleaseTimeout}, nil
}

func negativeReleaseTimeout(d time.Duration) error {
	return fmt.Errorf("%w: ReleaseTimeout %v is negative", ErrInvalidConfig, d)
}

// HeldLock returns the handle of the lock whose fn ctx belongs to ([Lock], [LockWith]),
// and nil outside such a fn: inside fn, read the lease's end ([LockHandle.ValidUntil],
// moved by each confirmed renewal) and the fencing token ([LockHandle.FencingToken])
// from it. A nil handle's methods return zero values. Do not Release or Extend it: Lock
// does.
func HeldLock(ctx context.Context) *LockHandle {
	h, _ := ctx.Value(heldKey{}).(*LockHandle)
	return h
}

func acquire(ctx context.Context, c *Cache, key string, o LockOptions) (*LockHandle, error) {
	start := c.m.sampleStart()
	if o.TTL <= 0 {
		return nil, opError("Lock", key, fmt.Errorf("%w: a lock needs a TTL > 0, got %v", ErrInvalidTTL, o.TTL))
	}
	if o.Wait < 0 {
		return nil, opError("Lock", key, fmt.Errorf("%w: Wait %v is negative", ErrInvalidConfig, o.Wait))
	}
	if o.ReleaseTimeout < 0 {
		return nil, opError("Lock", key, negativeReleaseTimeout(o.ReleaseTimeout))
	}
	o.TTL = capTTL(o.TTL)
	d, k, err := c.prep(ctx, o.Driver, key)
	if err != nil {
		if ctx.Err() != nil {
			err = gaveUp(ctx, err)
		}
		return nil, d.fail("Lock", key, err)
	}
	if ctx.Err() != nil { // a caller that has gone away takes no lock
		return nil, d.fail("Lock", key, gaveUp(ctx, nil))
	}
	if o.Wait > 0 {
		if err := lockReentered(ctx, c.m, d, k); err != nil {
			return nil, d.fail("Lock", key, err)
		}
	}
	owner := o.Owner
	if owner == "" {
		owner = defaultOwner
	}
	h := &LockHandle{m: c.m, d: d, key: key, final: k, token: token.New(owner), ttl: o.TTL, timeout: o.ReleaseTimeout}
	if h.stored, err = d.encodeString(h.token); err != nil {
		return nil, d.fail("Lock", key, err)
	}
	ok, err := h.try(ctx, o.Fencing)
	if err == nil && !ok {
		err = holdsLock(ctx, d, k)
	}
	if err != nil && ctx.Err() != nil {
		err = gaveUp(ctx, err) // the attempt or the check was cut by ctx
	}
	if err != nil {
		c.done("Lock", d, key, 0, err, start)
		return nil, d.fail("Lock", key, err)
	}
	if ok {
		c.done("Lock", d, key, EventLockAcquired, nil, start)
		return h, nil
	}
	c.done("Lock", d, key, EventLockContended, nil, start)
	if o.Wait <= 0 {
		return nil, d.fail("Lock", key, ErrNotAcquired)
	}
	switch err := waitLoop(ctx, d, k, o.Wait, true, func() (bool, error) { return h.try(ctx, o.Fencing) }); {
	case err == wait.ErrOver:
		return nil, d.fail("Lock", key, fmt.Errorf("%w: %w after %v", ErrNotAcquired, ErrWaitTimeout, o.Wait))
	case err != nil && ctx.Err() != nil:
		return nil, d.fail("Lock", key, gaveUp(ctx, err))
	case err != nil:
		c.done("Lock", d, key, 0, err, start)
		return nil, d.fail("Lock", key, err)
	}
	c.done("Lock", d, key, EventLockAcquired, nil, start)
	return h, nil
}

// gaveUp is acquire's error when ctx ended before the lock was taken, whatever step it
// cut (the key's scope, an attempt, the check that the key holds a lock, the wait):
// it matches ErrNotAcquired, ctx's error and its cause, and keeps err, the step's own
// error (a driver's "context deadline exceeded"), if any. The rule is the manager's, so
// that it holds for every driver, however its calls report a ctx that ends.
func gaveUp(ctx context.Context, err error) error {
	joined := errors.Join(ErrNotAcquired, err)
	for _, e := range []error{context.Cause(ctx), ctx.Err()} {
		if !errors.Is(joined, e) {
			joined = errors.Join(joined, e)
		}
	}
	return joined
}

// endedCtx reports whether err is acquire's error for a ctx that ended ([gaveUp]),
// rather than plain contention.
func endedCtx(ctx context.Context, err error) bool {
	return ctx.Err() != nil && errors.Is(err, ctx.Err())
}

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

// ValidUntil returns the end of this holder's lease: the time the acquiring (or last
// confirmed renewing) request was sent, plus its TTL, minus a margin for clock drift
// (TTL/100 + 2 ms, at most TTL/2). Until then no other holder can take the lock, since
// the store cannot have expired it; after it, holding the lock can no longer be proven.
// Check it (time.Now().Before(h.ValidUntil())) before each step whose effects must not
// overlap another holder's. Only an [LockHandle.Extend] whose reply came back moves it.
// A restored handle ([RestoreLock]) has a zero ValidUntil until its first Extend.
func (h *LockHandle) ValidUntil() time.Time {
	if h == nil {
		return time.Time{}
	}
	n := h.until.Load()
	if n == 0 {
		return time.Time{}
	}
	return h.since.Add(time.Duration(n))
}

// lapsed reports whether the lease is known and has ended.
func (h *LockHandle) lapsed() bool {
	n := h.until.Load()
	return n != 0 && int64(time.Since(h.since)) >= n
}

// waitLoop is the one wait loop of the package (Lock's Wait, distributed Remember, Once):
// [wait.Loop] on key's watch, with a backoff doubling from 10 ms to 250 ms (the poll is
// the safety net for expiry and unreported deletes, which no watch sees, and the only
// wake-up where the driver's Watch fails or is unsupported).
func waitLoop(ctx context.Context, d *namedDriver, key string, limit time.Duration, watchFirst bool, attempt func() (done bool, err error)) error {
	watch := func(ctx context.Context) (<-chan struct{}, error) { return d.atomic.Watch(ctx, key) }
	return wait.Loop(ctx, watch, 10*time.Millisecond, 250*time.Millisecond, limit, watchFirst, attempt)
}

// keepAlive returns fn's ctx, which ends when the lease does: at its end without
// AutoExtend; with AutoExtend, when a renewal fails or finds the lock gone, or when the
// lease ends before a renewal is confirmed. stop ends the renewals, waits for them, and
// cancels the returned ctx.
//
// The lease's end is watched by a timer of its own, not by the renewing goroutine: a
// renewal stuck in the driver (a frozen connection, a client that ignores its context)
// cannot hold it up.
func (h *LockHandle) keepAlive(ctx context.Context, autoExtend bool) (fctx context.Context, stop func()) {
	if h.until.Load() == 0 { // Once's marker is taken without try
		h.until.Store(h.leaseEnd(h.since, h.ttl))
	}
	if !autoExtend {
		end := h.ValidUntil()
		if dl, ok := ctx.Deadline(); ok && !dl.After(end) {
			return ctx, func() {} // the caller's deadline ends fn before the lease can
		}
		fctx, cancel := context.WithDeadlineCause(ctx, end, errLeaseEnded)
		return fctx, cancel
	}
	fctx, cancel := context.WithCancelCause(ctx)
	var lease *time.Timer
	lease = time.AfterFunc(time.Until(h.ValidUntil()), func() {
		// A confirmed renewal may have moved the end since the timer was set.
		if left := time.Until(h.ValidUntil()); left > 0 {
			lease.Reset(left)
			return
		}
		cancel(errLeaseEnded)
	})
	interval := max(h.ttl/3, time.Millisecond)
	done := make(chan struct{})
	quit := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-quit:
				return
			case <-fctx.Done():
				return
			case <-t.C:
			}
			// A renewal gets one interval: a slower answer is as good as none.
			rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), interval)
			sent := time.Now()
			ok, err := wait.Bounded(rctx, func(ctx context.Context) (bool, error) {
				return h.d.atomic.Extend(ctx, h.final, h.stored, h.ttl)
			})
			rcancel()
			switch {
			case err != nil:
				cancel(fmt.Errorf("%w: renewal failed, so holding it cannot be proven: %w", ErrLockLost, err))
				return
			case !ok:
				cancel(fmt.Errorf("%w: a renewal found it gone or taken by another holder", ErrLockLost))
				return
			}
			// Confirmed: the lease now runs from this renewal's send time, unless it
			// ended while the reply was on its way: a lapsed lease stays lapsed.
			if h.lapsed() {
				cancel(errLeaseEnded)
				return
			}
			h.until.Store(h.leaseEnd(sent, h.ttl))
		}
	}()
	return fctx, func() {
		close(quit)
		<-done
		lease.Stop()
		cancel(nil)
	}
}

// releaseTimeout bounds h's release and Extend calls.
func (h *LockHandle) releaseTimeout() time.Duration {
	if h.timeout > 0 {
		return h.timeout
	}
	return ReleaseTimeout
}

// extendCtx returns the context of an Extend: ctx, with a deadline no later than
// timeout from now, so that no Extend waits on the store for longer.
func extendCtx(ctx context.Context, timeout time.Duration) (context.Context, context.CancelFunc) {
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) <= timeout {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, timeout)
}

// detached returns a context with ctx's values but neither its cancellation nor its
// deadline, that ends after timeout: the context of a release, which must not inherit
// the caller's deadline (a release cut short leaves the lock held for its whole TTL).
func detached(ctx context.Context, timeout time.Duration) (context.Context, context.CancelFunc) {
	if ctx.Done() != nil {
		ctx = context.WithoutCancel(ctx)
	}
	return context.WithTimeout(ctx, timeout)
}

// release deletes the lock if it still holds this holder's token, on a context detached
// from ctx. A failure is reported as an error event (with a manager).
func (h *LockHandle) release(ctx context.Context) error {
	ctx, cancel := detached(ctx, h.releaseTimeout())
	defer cancel()
	ok, err := h.d.atomic.CompareAndDelete(ctx, h.final, h.stored)
	if h.m != nil && (ok || err != nil) {
		(&Cache{m: h.m}).done("Release", h.d, h.key, EventLockReleased, err, 0)
	}
	if err != nil {
		return err
	}
	if !ok {
		return ErrLockNotHeld
	}
	return nil
}

// Key returns the lock's key, as given to Acquire.
func (h *LockHandle) Key() string {
	if h == nil {
		return ""
	}
	return h.key
}

// Token returns the lock's token, "<owner>#<random>": the value stored under the key.
// Hand it to [RestoreLock] to extend or release the lock from elsewhere.
func (h *LockHandle) Token() string {
	if h == nil {
		return ""
	}
	return h.token
}

// FencingToken returns the fencing token taken with the lock (LockOptions.Fencing), or 0.
func (h *LockHandle) FencingToken() int64 {
	if h == nil {
		return 0
	}
	return h.fence
}

// Release releases the lock if this holder still has it, and returns an error matching
// [ErrLockNotHeld] if it does not (its TTL ran out, or it was force-released). If the
// lease had ended before the release (see [LockHandle.ValidUntil]), the error matches
// [ErrLockLost] too, even when the key was still there to delete: for a while the
// holder could not prove it held the lock. Like Lock's release it never inherits ctx's
// cancellation or deadline: it runs on a context detached from ctx, and never waits
// longer than LockOptions.ReleaseTimeout (default [ReleaseTimeout]). A failure is
// returned, and reported as an [EventError] too; the lock then ends at its TTL.
func (h *LockHandle) Release(ctx context.Context) error {
	if h == nil {
		return opError("Release", "", ErrLockNotHeld)
	}
	lapsed := h.lapsed()
	err := h.release(ctx)
	if lapsed {
		err = errors.Join(fmt.Errorf("%w: its lease ended at %v, before the release", ErrLockLost, h.ValidUntil().Round(0)), err)
	}
	if err != nil {
		return h.d.fail("Release", h.key, err)
	}
	return nil
}

// Extend sets the lock's remaining TTL to ttl (0: the TTL it was taken with), if this
// holder still has it; otherwise the error matches [ErrLockNotHeld]. Once the store has
// confirmed it, the lease ([LockHandle.ValidUntil]) runs from the time this request was
// sent; an Extend that fails or has no answer leaves the lease as it was. It returns by
// its deadline (ctx's, or LockOptions.ReleaseTimeout from now if earlier) even if the
// driver does not. Of concurrent Extend calls, the one sent last sets the lease.
func (h *LockHandle) Extend(ctx context.Context, ttl time.Duration) error {
	if h == nil {
		return opError("Extend", "", ErrLockNotHeld)
	}
	if ttl == 0 {
		ttl = h.ttl
	}
	if ttl <= 0 {
		return h.d.fail("Extend", h.key, fmt.Errorf("%w: %v", ErrInvalidTTL, ttl))
	}
	ttl = capTTL(ttl)
	ctx, cancel := extendCtx(ctx, h.releaseTimeout())
	defer cancel()
	seq := h.sent.Add(1)
	sent := time.Now()
	ok, err := wait.Bounded(ctx, func(ctx context.Context) (bool, error) {
		return h.d.atomic.Extend(ctx, h.final, h.stored, ttl)
	})
	if err != nil {
		return h.d.fail("Extend", h.key, err)
	}
	if !ok {
		return h.d.fail("Extend", h.key, ErrLockNotHeld)
	}
	if h.sent.Load() == seq {
		h.until.Store(h.leaseEnd(sent, ttl))
	}
	return nil
}

// TTL returns the lock's remaining TTL if this holder still has it (-1 if the driver
// cannot tell), and an error matching [ErrLockNotHeld] if it does not.
func (h *LockHandle) TTL(ctx context.Context) (time.Duration, error) {
	if h == nil {
		return 0, opError("TTL", "", ErrLockNotHeld)
	}
	info, err := inspect(ctx, h.d, h.final)
	if err != nil {
		return 0, h.d.fail("TTL", h.key, err)
	}
	if !info.Held || info.Token != h.token {
		return 0, h.d.fail("TTL", h.key, ErrLockNotHeld)
	}
	return info.TTL, nil
}

// LockInfo describes a lock, for operators: see [InspectLock].
type LockInfo struct {
	// Key is the lock's key, as the caller names it.
	Key string
	// Held reports whether the key holds a lock.
	Held bool
	// Owner is the holder's owner label; Token is the whole stored token.
	Owner, Token string
	// TTL is the remaining TTL; -1 when the driver cannot tell, 0 for no expiry.
	TTL time.Duration
}

// InspectLock tells who holds the lock key and for how long, without touching it.
func InspectLock(ctx context.Context, c *Cache, key string) (LockInfo, error) {
	d, k, err := c.prep(ctx, "", key)
	if err != nil {
		return LockInfo{}, d.fail("InspectLock", key, err)
	}
	info, err := inspect(ctx, d, k)
	if err != nil {
		return LockInfo{}, d.fail("InspectLock", key, err)
	}
	info.Key = key
	return info, nil
}

func inspect(ctx context.Context, d *namedDriver, key string) (LockInfo, error) {
	v, found, err := d.d.Get(ctx, key)
	if err != nil || !found {
		return LockInfo{}, err
	}
	var token string
	if err := d.decode(v, &token); err != nil {
		return LockInfo{}, fmt.Errorf("the key does not hold a lock: %w", err)
	}
	i := strings.LastIndexByte(token, '#')
	if i < 0 {
		return LockInfo{}, fmt.Errorf("the key holds %q, not a lock token", token)
	}
	info := LockInfo{Held: true, Owner: token[:i], Token: token, TTL: -1}
	if d.ttlr != nil {
		ttl, found, err := d.ttlr.TTL(ctx, key)
		if err != nil {
			return LockInfo{}, err
		}
		if !found { // released between the two reads
			return LockInfo{}, nil
		}
		info.TTL = ttl
	}
	return info, nil
}

// ForceRelease deletes the lock key whoever holds it: for operators clearing a stuck
// lock. The holder's fn keeps running (its own release then finds nothing to release).
// Prefer waiting for the TTL when the holder may still be alive.
func ForceRelease(ctx context.Context, c *Cache, key string) error {
	if err := c.Remove(ctx, key); err != nil {
		return opError("ForceRelease", key, err)
	}
	return nil
}
