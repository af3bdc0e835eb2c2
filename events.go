package cache

import (
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
// Lock, LockWith, Acquire and LockHandle.Release; Expired from the drivers that report
// expiry (memory, lru, file; not Redis). docs/events.md has the full table.
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
	EventExpired       // a driver dropped an entry because its TTL passed
)

// lastKind is the highest EventKind.
const lastKind = EventExpired

// allKinds is the mask of every kind: bit k set for kind k.
const allKinds = uint32(1)<<(lastKind+1) - 2

var eventNames = [...]string{"", "hit", "miss", "set", "removed", "flushed", "error",
	"lock.acquired", "lock.contended", "lock.released", "lock.lost", "expired"}

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
	m    *manager
	mask uint32 // the kinds it wants: bit k for kind k
	fn   func(Event)
	size int // the most events queued

	// The queue: a cache call appends under mu; the delivery goroutine takes the whole
	// queue at once, so it locks once per batch, not per event, and a call wakes it
	// only when it sleeps.
	mu       sync.Mutex
	queue    []Event
	sleeping bool // the delivery goroutine waits on wake
	stopped  bool
	wake     chan struct{} // buffered (1): at most one wake-up per sleep

	dropped atomic.Int64
	done    chan struct{}
	once    sync.Once
}

// Subscribe registers fn for the events of every driver of c's manager, now and later:
// the events of the given kinds, or of every kind when none is given. Events are queued
// in a buffer of the given size (default 1024) and handed to fn by a goroutine of the
// subscription, one at a time, in order: a slow fn never slows a cache call by more than
// queueing the event (a short mutex hold and a copy, never a wait for fn); when the
// buffer is full the event is dropped and counted
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
	s := &Subscription{m: c.m, mask: mask, fn: fn, size: buffer, wake: make(chan struct{}, 1), done: make(chan struct{})}
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
	m.clock.run()
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

// put queues e, or drops and counts it when the queue is full.
func (s *Subscription) put(e Event) {
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		return
	}
	if len(s.queue) >= s.size {
		s.mu.Unlock()
		s.dropped.Add(1)
		return
	}
	s.queue = append(s.queue, e)
	wake := s.sleeping
	s.sleeping = false
	s.mu.Unlock()
	if wake {
		s.wake <- struct{}{} // never blocks: one wake-up per sleep, into a buffer of one
	}
}

// deliver hands the queued events to fn, a batch at a time, until Stop; then it delivers
// what is queued and returns.
func (s *Subscription) deliver() {
	defer close(s.done)
	var spare []Event
	for {
		s.mu.Lock()
		for len(s.queue) == 0 {
			if s.stopped {
				s.mu.Unlock()
				return
			}
			s.sleeping = true
			s.mu.Unlock()
			<-s.wake
			s.mu.Lock()
		}
		batch := s.queue
		s.queue = spare[:0]
		s.mu.Unlock()
		for i := range batch {
			s.handle(batch[i])
			batch[i] = Event{} // let the keys and errors go
		}
		spare = batch
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
		s.mu.Lock()
		s.stopped = true
		wake := s.sleeping
		s.sleeping = false
		s.mu.Unlock()
		if wake {
			s.wake <- struct{}{}
		}
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
		mt.count(mt.byName(e.Driver), e.Kind)
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
		e.Time = m.clock.now()
	}
	for _, s := range m.loadSubs() {
		if s.mask&b != 0 {
			s.put(e)
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
		mt.byName(driverName).latency(op, time.Since(start))
	}
}

// record is observe for an operation on d (nil: it failed before a driver was chosen),
// for a kind that someone wants (the caller asked [manager.wants]).
func (m *manager) record(op string, d *namedDriver, key string, kind EventKind, err error, start time.Time) {
	name := ""
	if mt := m.metrics; mt != nil {
		dm := mt.none
		if d != nil {
			dm = d.metrics
		}
		mt.count(dm, kind)
		if !start.IsZero() {
			dm.latency(op, time.Since(start))
		}
	}
	if m.subWant.Load()&kindBit(kind) == 0 { // before building the Event: it is 100 bytes
		return
	}
	if d != nil {
		name = d.name
	}
	m.send(Event{Kind: kind, Op: op, Driver: name, Key: key, Err: err})
}

// sampleEvery is how often a timed operation is sampled: about one call in sampleEvery
// (the next timed call of a goroutine after every sampleEvery-th event of its counter
// shard).
const sampleEvery = 64

// sampleStart returns now for about one operation in sampleEvery when metrics are on,
// else zero: reading the clock twice on every call would cost more than a memory Get.
func (m *manager) sampleStart() time.Time {
	if mt := m.metrics; mt != nil && mt.sampling() {
		return time.Now()
	}
	return time.Time{}
}

// stopSubscriptions stops every subscription and the events' clock. Close calls it after
// marking the manager closed, so Subscribe adds none after it looked (both hold subMu).
func (m *manager) stopSubscriptions() {
	m.subMu.Lock()
	subs := m.loadSubs()
	m.clock.halt()
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

// expired reports that driver d dropped the entry stored under key because its TTL
// passed. The key loses the global prefix; a key outside the prefix is another cache's
// over the same store, and is not reported. With Config.PrefixFunc the key is reported
// as stored. A namespace stays in the key ("users.1"): the driver does not know which
// view wrote it.
func (m *manager) expired(d *namedDriver, key string) {
	if !m.wants(EventExpired) {
		return
	}
	if m.prefixFunc == nil && m.prefix != "" {
		if len(key) <= len(m.prefix) || key[len(m.prefix)] != '.' || key[:len(m.prefix)] != m.prefix {
			return
		}
		key = key[len(m.prefix)+1:]
	}
	m.record("Expire", d, key, EventExpired, nil, time.Time{})
}

func hitOrMiss(found bool) EventKind {
	if found {
		return EventHit
	}
	return EventMiss
}

// coarseClock is the clock of Event.Time. time.Now costs about as much as a memory Get
// (50 ns on a small VM), so while events flow a goroutine reads it once a millisecond
// and the events take that reading: an atomic load. It sleeps after 10 ms without an
// event, and the first event after that reads time.Now itself and wakes it. So Time is
// exact for a lone event, and up to a millisecond early (more when the clock's goroutine
// waits for a CPU) in a stream of events.
type coarseClock struct {
	nanos   atomic.Int64  // the last reading, Unix ns; 0 while asleep
	used    atomic.Bool   // read since the last tick
	wake    chan struct{} // made by New, buffered (1)
	stop    chan struct{}
	done    chan struct{}
	running bool // run was called; halt waits for the goroutine (both under subMu)
	halted  bool
}

const (
	clockTick  = time.Millisecond
	clockSleep = 10 // ticks without an event before the clock sleeps
)

// now returns the time of an event.
func (c *coarseClock) now() time.Time {
	if n := c.nanos.Load(); n != 0 {
		if !c.used.Load() {
			c.used.Store(true)
		}
		return time.Unix(0, n)
	}
	select {
	case c.wake <- struct{}{}:
	default:
	}
	return time.Now()
}

// run starts the clock's goroutine, once. The caller holds subMu.
func (c *coarseClock) run() {
	if c.running || c.halted {
		return
	}
	c.running = true
	c.stop, c.done = make(chan struct{}), make(chan struct{})
	go c.loop()
}

// halt stops the clock's goroutine and waits for it; later events read time.Now. The
// caller holds subMu.
func (c *coarseClock) halt() {
	if c.halted {
		return
	}
	c.halted = true
	if c.running {
		close(c.stop)
		<-c.done
	}
}

func (c *coarseClock) loop() {
	defer close(c.done)
	defer c.nanos.Store(0)
	for {
		select { // asleep
		case <-c.stop:
			return
		case <-c.wake:
		}
		c.used.Store(true)
		c.nanos.Store(time.Now().UnixNano())
		t := time.NewTicker(clockTick)
		for idle := 0; idle < clockSleep; {
			select {
			case <-c.stop:
				t.Stop()
				return
			case <-t.C:
			}
			if c.used.Swap(false) {
				idle = 0
			} else {
				idle++
			}
			c.nanos.Store(time.Now().UnixNano())
		}
		t.Stop()
		c.nanos.Store(0)
	}
}
