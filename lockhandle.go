package cache

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/cachekit/cache/internal/wait"
)

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
		return nil, opError(opRestoreLock, key, fmt.Errorf("%w: %q is not a lock token", ErrInvalidKey, token))
	}
	if o.ReleaseTimeout < 0 {
		return nil, opError(opRestoreLock, key, negativeReleaseTimeout(o.ReleaseTimeout))
	}
	d, k, err := c.prep(ctx, o.Driver, key)
	if err != nil {
		return nil, d.fail(opRestoreLock, key, err)
	}
	stored, err := d.encodeString(token)
	if err != nil {
		return nil, d.fail(opRestoreLock, key, err)
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
		(&Cache{m: h.m}).done(opRelease, h.d, h.key, EventLockReleased, err, 0)
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
		return opError(opRelease, "", ErrLockNotHeld)
	}
	lapsed := h.lapsed()
	err := h.release(ctx)
	if lapsed {
		err = errors.Join(fmt.Errorf("%w: its lease ended at %v, before the release", ErrLockLost, h.ValidUntil().Round(0)), err)
	}
	if err != nil {
		return h.d.fail(opRelease, h.key, err)
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
		return opError(opExtend, "", ErrLockNotHeld)
	}
	if ttl == 0 {
		ttl = h.ttl
	}
	if ttl <= 0 {
		return h.d.fail(opExtend, h.key, fmt.Errorf("%w: %v", ErrInvalidTTL, ttl))
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
		return h.d.fail(opExtend, h.key, err)
	}
	if !ok {
		return h.d.fail(opExtend, h.key, ErrLockNotHeld)
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
		return 0, opError(opTTL, "", ErrLockNotHeld)
	}
	info, err := inspect(ctx, h.d, h.final)
	if err != nil {
		return 0, h.d.fail(opTTL, h.key, err)
	}
	if !info.Held || info.Token != h.token {
		return 0, h.d.fail(opTTL, h.key, ErrLockNotHeld)
	}
	return info.TTL, nil
}
