package cache

import (
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// EventKind says what an [Event] reports.
type EventKind uint8

// The events. Hit and Miss come from Get, GetAs, Has, Pull and Remember's read; Set from
// Set, SetWith (when it wrote), Forever, Increment, Decrement and Remember's store;
// Removed from Remove and Pull; Flushed from Flush and RemoveNamespace; Error from those
// operations when the driver failed (and from Get on bad input); the Lock events from
// Lock, LockWith, Acquire and LockHandle.Release. SWR, Many, SetMany, Modify, lists,
// Once and InvalidateTags emit no events yet. Expiry is not reported: the drivers drop
// expired entries lazily, or Redis does.
const (
	EventHit EventKind = iota + 1
	EventMiss
	EventSet
	EventRemoved
	EventFlushed
	EventError
	EventLockAcquired  // a lock was taken
	EventLockContended // a lock was held by another (Acquired == false, or a wait began)
	EventLockReleased  // a lock was released by its holder
	EventLockLost      // a lock ended while fn ran (ErrLockLost)
)

var eventNames = [...]string{"", "hit", "miss", "set", "removed", "flushed", "error",
	"lock.acquired", "lock.contended", "lock.released", "lock.lost"}

// String returns the event's name: "hit", "lock.acquired", ...
func (k EventKind) String() string {
	if int(k) < len(eventNames) && k != 0 {
		return eventNames[k]
	}
	return "unknown"
}

// Event is one thing that happened in the cache.
type Event struct {
	Kind EventKind
	// Op is the operation: "Get", "Set", "Lock", ...
	Op string
	// Driver is the name of the driver the operation ran on.
	Driver string
	// Key is the key as the caller gave it (before the prefix and namespace).
	Key string
	// Err is the error of an EventError.
	Err error
	// Time is when it happened.
	Time time.Time
}

// Subscription is a handler registered with [Cache.Subscribe].
type Subscription struct {
	m       *manager
	ch      chan Event // never closed: emit sends without a lock
	quit    chan struct{}
	fn      func(Event)
	dropped atomic.Int64
	done    chan struct{}
	once    sync.Once
}

// Subscribe registers fn for every event of every driver of c's manager, now and later.
// Events are queued in a buffer of the given size (default 1024) and handed to fn by a
// goroutine of the subscription, one at a time, in order: a slow fn never slows a cache
// call by more than a non-blocking channel send; when the buffer is full the event is
// dropped and counted ([Subscription.Dropped]). A panic in fn is recovered and the
// delivery goes on. Stop the subscription with [Subscription.Stop]; Close stops them all.
//
// With no subscription (and no metrics) a cache call pays one atomic load for events.
func (c *Cache) Subscribe(buffer int, fn func(Event)) *Subscription {
	if buffer <= 0 {
		buffer = 1024
	}
	s := &Subscription{m: c.m, ch: make(chan Event, buffer), quit: make(chan struct{}), fn: fn, done: make(chan struct{})}
	m := c.m
	m.subMu.Lock()
	defer m.subMu.Unlock()
	if m.closed.Load() {
		close(s.done)
		s.once.Do(func() {})
		return s
	}
	subs := append(slices.Clone(m.loadSubs()), s)
	m.subs.Store(&subs)
	m.obs.Store(true)
	go s.deliver()
	return s
}

func (s *Subscription) deliver() {
	defer close(s.done)
	for {
		select {
		case e := <-s.ch:
			s.handle(e)
		case <-s.quit:
			for { // deliver what is queued, then stop
				select {
				case e := <-s.ch:
					s.handle(e)
				default:
					return
				}
			}
		}
	}
}

func (s *Subscription) handle(e Event) {
	defer func() { _ = recover() }() // a panicking handler never breaks the delivery
	s.fn(e)
}

// Dropped returns how many events were dropped because the buffer was full.
func (s *Subscription) Dropped() int64 { return s.dropped.Load() }

// Stop unregisters the subscription, lets it deliver what is queued, and waits for that.
func (s *Subscription) Stop() {
	s.once.Do(func() {
		m := s.m
		m.subMu.Lock()
		subs := slices.DeleteFunc(slices.Clone(m.loadSubs()), func(x *Subscription) bool { return x == s })
		m.subs.Store(&subs)
		m.obs.Store(len(subs) > 0 || m.metrics != nil)
		m.subMu.Unlock()
		close(s.quit)
	})
	<-s.done
}

func (m *manager) loadSubs() []*Subscription {
	if p := m.subs.Load(); p != nil {
		return *p
	}
	return nil
}

// observing reports whether anyone listens: subscribers or metrics.
func (m *manager) observing() bool { return m.obs.Load() }

// emit hands e to every subscriber, never blocking.
func (m *manager) emit(e Event) {
	subs := m.loadSubs()
	if len(subs) > 0 && e.Time.IsZero() { // metrics alone need no clock
		e.Time = time.Now()
	}
	for _, s := range subs {
		select {
		case s.ch <- e:
		default:
			s.dropped.Add(1)
		}
	}
	if mt := m.metrics; mt != nil {
		mt.count(e)
	}
}

// observe records the end of one operation: its events and, sampled, its latency.
// start is zero when the latency is not sampled.
func (m *manager) observe(op, driverName, key string, kind EventKind, err error, start time.Time) {
	if err != nil {
		kind = EventError
	}
	if kind != 0 {
		m.emit(Event{Kind: kind, Op: op, Driver: driverName, Key: key, Err: err})
	}
	if mt := m.metrics; mt != nil && !start.IsZero() {
		mt.latency(driverName, op, time.Since(start))
	}
}

// sampleStart returns now for one operation in eight when metrics are on, else zero:
// reading the clock on every call would cost as much as a memory Get.
func (m *manager) sampleStart() time.Time {
	if m.metrics != nil && rand.Uint32()&7 == 0 {
		return time.Now()
	}
	return time.Time{}
}

// stopSubscriptions stops every subscription. Close calls it after marking the manager
// closed, so Subscribe adds none after it looked (both hold subMu).
func (m *manager) stopSubscriptions() {
	m.subMu.Lock()
	subs := m.loadSubs()
	m.subMu.Unlock()
	for _, s := range subs {
		s.Stop()
	}
}

// done reports the end of an operation of c when anyone observes.
func (c *Cache) done(op string, d *namedDriver, key string, kind EventKind, err error, start time.Time) {
	if !c.m.observing() {
		return
	}
	name := ""
	if d != nil {
		name = d.name
	}
	c.m.observe(op, name, key, kind, err, start)
}

func hitOrMiss(found bool) EventKind {
	if found {
		return EventHit
	}
	return EventMiss
}
