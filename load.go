package cache

import (
	"context"

	"github.com/cachekit/cache/internal/flight"
)

// loadCall is the load of a Remember or SWR that missed: fn's result for the key, loaded
// once for every caller in the process, and stored.
type loadCall[T any] struct {
	c     *Cache
	op    operation // opRemember or opSWR
	d     *namedDriver
	key   string // as the caller gave it
	k     string // as the driver sees it
	fn    func(context.Context) (T, error)
	start stamp
	// storeDown says that the call's first read failed open: the store was out of reach
	// a moment ago, so the loader runs without another read first (one store attempt
	// before the loader, not two).
	storeDown bool
}

// enter returns ctx marked for fn's nested calls, and end to call when the load is
// over; a call from inside fn of the same operation on the same key gets ErrReentrant.
func (l *loadCall[T]) enter(ctx context.Context) (marked context.Context, end func(), err error) {
	if err := reentered(ctx, l.c.m, l.op, l.d, l.k); err != nil {
		return ctx, nil, l.d.fail(l.op, l.key, err)
	}
	marked, end = markInFlight(ctx, l.c.m, l.op, l.d, l.k)
	return marked, end, nil
}

// shared runs load once for every concurrent caller of the same operation, driver and
// key ([flight.Do] on the manager's flights), its errors wrapped with the op and key.
func (l *loadCall[T]) shared(ctx context.Context, load func() (any, error)) (T, error) {
	v, err := flight.Do[T](ctx, &l.c.m.flights, l.flightKey(), load)
	if err != nil {
		return v, l.d.fail(l.op, l.key, err)
	}
	return v, nil
}

// flightKey names the load's flight: its operation, driver and key.
func (l *loadCall[T]) flightKey() string {
	if l.op == opSWR {
		return "swr\x00" + l.d.name + "\x00" + l.k
	}
	return l.d.name + "\x00" + l.k
}

// loadStore runs fn and stores its result with store: the one load-and-store step of
// Remember and SWR. fn's error is returned as it is, and nothing is stored. A store that
// fails is reported as an error event and returned with the value ([flight.Partial]),
// unless the call fails open: the value alone is returned then.
func (l *loadCall[T]) loadStore(ctx context.Context, store func(context.Context, T) error) (any, error) {
	t, err := flight.Call(ctx, l.fn)
	if err != nil {
		return t, err
	}
	err = store(ctx, t)
	if err != nil && l.c.failsOpen(ctx, err) {
		l.c.done(l.op, l.d, l.key, 0, err, l.start)
		return t, nil // best effort: the store is out of reach
	}
	l.c.done(l.op, l.d, l.key, EventSet, err, l.start)
	if err != nil {
		return t, &flight.Partial{Err: err}
	}
	return t, nil
}
