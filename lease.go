package cache

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/cachekit/cache/internal/wait"
)

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
