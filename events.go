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
// Lock, LockWith, Acquire and LockHandle.Release. docs/events.md has the full table.
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

// lastKind is the highest EventKind.
const lastKind = EventLockLost

// allKinds is the mask of every kind: bit k set for kind k.
const allKinds = uint32(1)<<(lastKind+1) - 2

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
	// Time is when it happened, to within a few milliseconds (see docs/events.md).
	Time time.Time
}

// Subscription is a handler registered with [Cache.Subscribe].
type Subscription struct {
	m       *manager
	mask    uint32     // the kinds it wants: bit k for kind k
	ch      chan Event // never closed: emit sends without a lock
	quit    chan struct{}
	fn      func(Event)
	dropped atomic.Int64
	done    chan struct{}
	once    sync.Once
}

// Subscribe registers fn for the events of every driver of c's manager, now and later:
// the events of the given kinds, or of every kind when none is given. Events are queued
// in a buffer of the given size (default 1024) and handed to fn by a goroutine of the
// subscription, one at a time, in order: a slow fn never slows a cache call by more than
// a non-blocking channel send; when the buffer is full the event is dropped and counted
// ([Subscription.Dropped]). A panic in fn is recovered and the delivery goes on. Stop
// the subscription with [Subscription.Stop]; Close stops them all.
//
// A cache call whose event nobody wants (no subscription asked for its kind, and
// metrics are off) pays one atomic load for events: subscribe to the kinds you need,
// such as EventError and the lock events, and hits and misses stay free.
func (c *Cache) Subscribe(buffer int, fn func(Event), kinds ...EventKind) *Subscription {
	if buffer <= 0 {
		buffer = 1024
	}
	mask := allKinds
	if len(kinds) > 0 {
		mask = 0
		for _, k := range kinds {
			mask |= kindBit(k)
		}
	}
	s := &Subscription{m: c.m, mask: mask, ch: make(chan Event, buffer), quit: make(chan struct{}), fn: fn, done: make(chan struct{})}
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
	m.setWants(subs)
	go s.deliver()
	return s
}

// kindBit is k's bit in a mask of kinds; 0 for a kind that does not exist.
func kindBit(k EventKind) uint32 {
	if k == 0 || k > lastKind {
		return 0
	}
	return 1 << k
}

// setWants recomputes the masks of wanted kinds from subs. subMu is held.
func (m *manager) setWants(subs []*Subscription) {
	var sw uint32
	for _, s := range subs {
		sw |= s.mask
	}
	m.subWant.Store(sw)
	if m.metrics != nil {
		sw = allKinds // metrics count every kind
	}
	m.want.Store(sw)
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
		m.setWants(subs)
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

// observing reports whether anyone listens to anything: subscribers or metrics. Hot
// paths ask [manager.wants] for the kind they would emit instead.
func (m *manager) observing() bool { return m.want.Load() != 0 }

// wants reports whether anyone wants events of kind k: a subscription that asked for
// it, or metrics. It is one atomic load, and inlined.
func (m *manager) wants(k EventKind) bool { return m.want.Load()&(1<<k) != 0 }

// eventKind is the kind a read reports: error, hit or miss.
func eventKind(found bool, err error) EventKind {
	if err != nil {
		return EventError
	}
	if found {
		return EventHit
	}
	return EventMiss
}

// orError is kind, or EventError when err is not nil.
func orError(kind EventKind, err error) EventKind {
	if err != nil {
		return EventError
	}
	return kind
}

// emit counts e and hands it to every subscription that wants its kind, never blocking.
func (m *manager) emit(e Event) {
	if mt := m.metrics; mt != nil {
		mt.count(e)
	}
	m.send(e)
}

// send hands e to every subscription that wants its kind, never blocking. It reads the
// clock only when one does.
func (m *manager) send(e Event) {
	b := kindBit(e.Kind)
	if m.subWant.Load()&b == 0 {
		return
	}
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	for _, s := range m.loadSubs() {
		if s.mask&b == 0 {
			continue
		}
		select {
		case s.ch <- e:
		default:
			s.dropped.Add(1)
		}
	}
}

// observe records the end of one operation: its events and, sampled, its latency.
// start is zero when the latency is not sampled. Hot paths use [manager.record], which
// finds the driver's counters without a map lookup.
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

// record is observe for an operation on d (nil: it failed before a driver was chosen),
// for a kind that someone wants (the caller asked [manager.wants]).
func (m *manager) record(op string, d *namedDriver, key string, kind EventKind, err error, start time.Time) {
	name := ""
	if d != nil {
		name = d.name
	}
	m.observe(op, name, key, kind, err, start)
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

// done reports the end of an operation of c, if anyone wants its event: kind, or
// EventError when err is not nil. A zero kind without an error reports nothing.
func (c *Cache) done(op string, d *namedDriver, key string, kind EventKind, err error, start time.Time) {
	if kind = orError(kind, err); kind == 0 || !c.m.wants(kind) {
		return
	}
	c.m.record(op, d, key, kind, err, start)
}

func hitOrMiss(found bool) EventKind {
	if found {
		return EventHit
	}
	return EventMiss
}
