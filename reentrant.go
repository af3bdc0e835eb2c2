package cache

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
)

// ErrReentrant is the error of a call that would wait for itself: [Remember], [SWR] or
// [Once] called from inside its own fn on the same key of the same cache (an SWR's fn
// that a background refresh runs included), or [Lock] with Wait
// (and [Acquire] with Wait) called from inside a [Lock] fn that holds the same key. The
// call returns it at once and fn does not run; without the check it would wait for its
// own caller forever (Once renews its marker while fn runs) or until Wait ran out. A
// Lock's error of this kind matches [ErrNotAcquired] too. A nested Lock without Wait
// is plain contention, as before: Acquired == false and a nil error.
var ErrReentrant = errors.New("cache: called from inside its own fn on the same key (it would wait for itself)")

// inFlight marks the ctx handed to the fn of a Remember, SWR or Once: the operation, the
// cache and the key it runs for, and the marks of the calls it is nested in.
type inFlight struct {
	outer  *inFlight
	m      *manager
	op     operation
	driver string
	key    string      // as the driver sees it
	over   atomic.Bool // fn has returned: a goroutine it left behind may call again
}

type inFlightKey struct{}

// reentered returns an error matching ErrReentrant when ctx belongs to the fn of op on
// key k of driver d of m, and that fn has not returned.
func reentered(ctx context.Context, m *manager, op operation, d *namedDriver, k string) error {
	f, _ := ctx.Value(inFlightKey{}).(*inFlight)
	for ; f != nil; f = f.outer {
		if f.m == m && f.op == op && f.driver == d.name && f.key == k && !f.over.Load() {
			return ErrReentrant
		}
	}
	return nil
}

// markInFlight returns ctx marked as belonging to the fn of op on key k (see
// [reentered]); call end when fn has returned.
func markInFlight(ctx context.Context, m *manager, op operation, d *namedDriver, k string) (marked context.Context, end func()) {
	f := &inFlight{m: m, op: op, driver: d.name, key: k}
	f.outer, _ = ctx.Value(inFlightKey{}).(*inFlight)
	return context.WithValue(ctx, inFlightKey{}, f), func() { f.over.Store(true) }
}

// lockReentered returns an error matching ErrReentrant and ErrNotAcquired when ctx
// belongs to the fn of a Lock that holds key k of driver d of m.
func lockReentered(ctx context.Context, m *manager, d *namedDriver, k string) error {
	for h := HeldLock(ctx); h != nil; h = h.outer {
		if h.m == m && h.d.name == d.name && h.final == k && !h.over.Load() {
			return fmt.Errorf("%w: %w", ErrNotAcquired, ErrReentrant)
		}
	}
	return nil
}
