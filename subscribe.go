package cache

import (
	"fmt"
	"slices"

	"github.com/cachekit/cache/internal/queue"
)

// Subscribe registers fn for the events of every driver of c's manager, now and later:
// the events of the given kinds, or of every kind when none is given. It installs a
// [Hook] that queues each event, in a buffer of the given size (default 1024), for a
// goroutine of the subscription that hands them to fn one at a time, in order: a slow fn
// never slows a cache call by more than queueing the event (a short mutex hold and a
// copy, never a wait for fn); when the buffer is full the event is dropped and counted.
// A panic in fn is recovered and the delivery goes on. stop unregisters the
// subscription, lets it deliver what is queued, waits for that, and returns how many
// events were dropped; it may be called more than once. Close stops every subscription.
//
// A cache call whose event nobody wants pays one atomic load: subscribe to the kinds
// you need, such as EventError and the lock events, and hits and misses stay free.
//
// The findings of Config.CheckOnStart (EventFinding) are the exception to "now and
// later": they describe the store rather than an operation, and the checks run in the
// background from New on, so a subscription that wants them first gets those reported
// before it was made, in order, then the later ones.
//
// A negative buffer size, or a nil fn, is a mistake in the calling code, as a negative
// size is for make: Subscribe then installs nothing and panics with an error matching
// [ErrInvalidConfig]. 0 is the default size.
func (c *Cache) Subscribe(buffer int, fn func(Event), kinds ...EventKind) (stop func() (dropped int64)) {
	switch {
	case buffer < 0:
		panic(opError(opSubscribe, "", fmt.Errorf("%w: buffer size %d is negative", ErrInvalidConfig, buffer)))
	case fn == nil:
		panic(opError(opSubscribe, "", fmt.Errorf("%w: fn is nil", ErrInvalidConfig)))
	}
	if buffer == 0 {
		buffer = 1024
	}
	m := c.m
	m.hookMu.Lock()
	defer m.hookMu.Unlock()
	if m.closed.Load() {
		return func() int64 { return 0 }
	}
	q := queue.New(buffer, fn)
	h := newHook(Hook{Kinds: kinds, Observe: q.Put})
	h.sub = q
	if h.mask&kindBit(EventFinding) != 0 {
		for _, e := range m.findings { // reported before: see Config.CheckOnStart
			q.Put(e)
		}
	}
	m.setHooks(append(slices.Clone(m.loadHooks()), h))
	return func() int64 { return m.unsubscribe(q) }
}

// unsubscribe removes q's hook, lets q deliver what is queued, waits for that, and
// returns how many events q dropped. It may be called more than once.
func (m *manager) unsubscribe(q *queue.Queue[Event]) int64 {
	m.hookMu.Lock()
	m.setHooks(slices.DeleteFunc(slices.Clone(m.loadHooks()), func(h hook) bool { return h.sub == q }))
	m.hookMu.Unlock()
	return q.Stop()
}

// stopSubscriptions stops every subscription. Close calls it after marking the manager
// closed, so Subscribe adds none after it looked (both hold hookMu).
func (m *manager) stopSubscriptions() {
	m.hookMu.Lock()
	hs := m.loadHooks()
	m.hookMu.Unlock()
	for _, h := range hs {
		if h.sub != nil {
			m.unsubscribe(h.sub)
		}
	}
}
