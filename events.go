package cache

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/cachekit/cache/driver"
	"github.com/cachekit/cache/internal/queue"
)

// EventKind says what an [Event] reports.
type EventKind uint8

// The events. Hit and Miss come from Get, GetAs, Has, Pull and Remember's read; Set from
// Set, SetWith (when it wrote), Forever, Increment, Decrement and Remember's store;
// Removed from Remove and Pull; Flushed from Flush and RemoveNamespace; Error from those
// operations when the driver failed (and from Get on bad input: an invalid key, a dst
// that is not a non-nil pointer); the Lock events from Lock, LockWith, Acquire and
// LockHandle.Release; Expired from the drivers that implement driver.ExpiryNotifier;
// BreakerOpened and BreakerClosed from the drivers with a circuit breaker (an OnBreaker
// method, see package driver), once per change; FailedOpen from the reads that failed and
// were taken as a miss under Config.FailOpen or WithFailOpen; NearDropped and
// NearRestored from the drivers with a near tier that report it (an OnNear method),
// once per change; Finding from the checks of Config.CheckOnStart, once per warning or
// error. docs/events.md has the full table.
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
	EventBreakerOpened // a driver's circuit breaker opened: its store does not answer
	EventBreakerClosed // a driver's circuit breaker closed: its store answers again
	EventFailedOpen    // a read failed and was taken as a miss (fail-open)
	EventNearDropped   // a driver's near tier stopped serving copies: its tracking lost its proof
	EventNearRestored  // a driver's near tier serves copies again, after a drop
	EventFinding       // a check of Config.CheckOnStart found a warning or an error (Err: the driver.Finding)
)

// lastKind is the highest EventKind.
const lastKind = EventFinding

// allKinds is the mask of every kind: bit k set for kind k.
const allKinds = uint32(1)<<(lastKind+1) - 2

var eventNames = [...]string{"", "hit", "miss", "set", "removed", "flushed", "error",
	"lock.acquired", "lock.contended", "lock.released", "lock.lost", "expired",
	"breaker.opened", "breaker.closed", "failed_open", "near.dropped", "near.restored",
	"finding"}

// String returns the event's name: "hit", "lock.acquired", ...
func (k EventKind) String() string {
	if int(k) < len(eventNames) && k != 0 {
		return eventNames[k]
	}
	return "unknown"
}

// Event is one thing that happened in the cache: the end of an operation, or an entry
// that a driver dropped because its TTL passed.
type Event struct {
	Kind EventKind
	// Op is the operation: "Get", "Set", "Lock", ...
	Op string
	// Driver is the name of the driver the operation ran on.
	Driver string
	// Key is the key as the caller gave it (before the prefix and namespace).
	Key string
	// Err is the error of an EventError or an EventFailedOpen, and the driver.Finding
	// of an EventFinding (errors.As recovers it); nil otherwise.
	Err error
	// Time is when it happened.
	Time time.Time
	// Duration is how long the operation took, on a sample of about one operation in 64
	// while a hook asks for durations (Hook.Durations; Config.Metrics does), and 0
	// otherwise.
	Duration time.Duration
}

// Hook observes the operations of a cache: every operation ends in one path that counts
// it for metrics ([Config.Metrics]) and hands an [Event] to the hooks that asked for its
// kind. Subscriptions ([Cache.Subscribe]) are hooks that queue, and the adapters
// (Prometheus, OpenTelemetry, slog) are built on metrics and subscriptions. Install hooks
// with [Config.Hooks].
type Hook struct {
	// Kinds are the event kinds Observe is called for; none: every kind. An operation
	// whose kind no hook wants costs one atomic load.
	Kinds []EventKind
	// Durations asks for Event.Duration on a sample of the operations (about one in 64).
	// With Config.Metrics every hook gets the metrics' sample anyway.
	Durations bool
	// Observe is called at the end of the operation, synchronously, on the caller's
	// goroutine: it must be quick and must not block or call the cache. Queue the event
	// for slow work, as [Cache.Subscribe] does.
	Observe func(Event)
}

// hook is an installed Hook.
type hook struct {
	mask  uint32 // the kinds it wants: bit k for kind k
	times bool   // Durations
	fn    func(Event)
	sub   *queue.Queue[Event] // for a subscription's hook: to remove it
}

func newHook(h Hook) hook {
	mask := allKinds
	if len(h.Kinds) > 0 {
		mask = 0
		for _, k := range h.Kinds {
			mask |= kindBit(k)
		}
	}
	return hook{mask: mask, times: h.Durations, fn: h.Observe}
}

// kindBit is k's bit in a mask of kinds; 0 for a kind that does not exist.
func kindBit(k EventKind) uint32 {
	if k == 0 || k > lastKind {
		return 0
	}
	return 1 << k
}

// setHooks installs hs and recomputes the masks. hookMu is held (or the manager is being
// built, after its metrics).
func (m *manager) setHooks(hs []hook) {
	var want uint32
	timed := false
	for _, h := range hs {
		want |= h.mask
		timed = timed || h.times
	}
	m.hooks.Store(&hs)
	m.hookWant.Store(want)
	m.timed.Store(timed)
	if m.metrics != nil {
		want = allKinds // metrics count every kind
	}
	m.want.Store(want)
}

func (m *manager) loadHooks() []hook {
	if p := m.hooks.Load(); p != nil {
		return *p
	}
	return nil
}

// wants reports whether a hook wants events of kind k. It is one atomic load, and
// inlined.
func (m *manager) wants(k EventKind) bool { return m.want.Load()&(1<<k) != 0 }

// done reports the end of an operation of c: kind, or EventError when err is not nil;
// start is zero for an operation that was not sampled. A zero kind without an error
// reports nothing.
func (c *Cache) done(op operation, d *namedDriver, key string, kind EventKind, err error, start stamp) {
	if kind = orError(kind, err); kind != 0 && c.m.wants(kind) {
		c.m.end(op, d, key, kind, err, start)
	}
}

// end is the one path of every event: it counts the operation for metrics, on the
// driver's own counters (found without a map lookup), and hands an Event to every hook
// that wants its kind; the Event is built only then. The caller checked
// [manager.wants].
func (m *manager) end(op operation, d *namedDriver, key string, kind EventKind, err error, start stamp) {
	if mt := m.metrics; mt != nil {
		mt.count(d, op, kind, start)
	}
	if m.hookWant.Load()&(1<<kind) != 0 {
		m.deliver(op, d, key, kind, err, start)
	}
}

// deliver builds the Event and hands it to every hook that wants its kind.
func (m *manager) deliver(op operation, d *namedDriver, key string, kind EventKind, err error, start stamp) {
	b := kindBit(kind)
	e := Event{Kind: kind, Op: op.String(), Key: key, Err: err, Time: time.Now()}
	if d != nil {
		e.Driver = d.name
	}
	if start != 0 {
		e.Duration = start.since()
	}
	for _, h := range m.loadHooks() {
		if h.mask&b != 0 {
			h.fn(e)
		}
	}
}

// eventKind is the kind a read reports: error, hit or miss.
func eventKind(found bool, err error) EventKind { return orError(hitOrMiss(found), err) }

func hitOrMiss(found bool) EventKind {
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
	m.end(opExpire, d, key, EventExpired, nil, 0)
}

// stateChange is a state of a driver that it reports through a discovered method
// shaped like OnBreaker (see the package doc of driver, "Methods the manager
// discovers"): the manager registers a function with register, and turns each call of
// it into an event of Op op without a key: on when the state turned true, off when it
// turned false.
type stateChange struct {
	op      operation
	on, off EventKind
	// flag is the state's flag in the driver's metrics, or nil for none.
	flag func(*driverMetrics) *atomic.Bool
	// register registers fn with d, if d has the method (found by newNamedDriver).
	register func(d *namedDriver, fn func(bool))
}

// stateChanges are the states the manager discovers: the circuit breaker (OnBreaker:
// open is true) and the near tier (OnNear: serving is true).
var stateChanges = [...]stateChange{
	{op: opBreaker, on: EventBreakerOpened, off: EventBreakerClosed,
		flag: func(dm *driverMetrics) *atomic.Bool { return &dm.breakerOpen },
		register: func(d *namedDriver, fn func(bool)) {
			if d.breaker != nil {
				d.breaker.OnBreaker(fn)
			}
		}},
	{op: opNear, on: EventNearRestored, off: EventNearDropped,
		register: func(d *namedDriver, fn func(bool)) {
			if d.nearState != nil {
				d.nearState.OnNear(fn)
			}
		}},
}

// changed reports that the state s of driver d turned on or off: its flag in the
// metrics, and an event of Op s.op without a key.
func (m *manager) changed(d *namedDriver, s *stateChange, on bool) {
	if s.flag != nil && d.metrics != nil {
		s.flag(d.metrics).Store(on)
	}
	kind := s.off
	if on {
		kind = s.on
	}
	if m.wants(kind) {
		m.end(s.op, d, "", kind, nil, 0)
	}
}

// finding reports a warning or an error of driver d's checks (Config.CheckOnStart): an
// event of Op "Doctor" with the check as Key and the finding as Err. The event is
// kept, so that a subscription made later gets it too (see Cache.Subscribe); hookMu is
// held while it is kept and delivered, so that a subscription gets it exactly once.
func (m *manager) finding(d *namedDriver, f driver.Finding) {
	m.hookMu.Lock()
	defer m.hookMu.Unlock()
	m.findings = append(m.findings, Event{Kind: EventFinding, Op: opDoctor.String(), Driver: d.name, Key: f.Check, Err: f, Time: time.Now()})
	if m.wants(EventFinding) {
		m.end(opDoctor, d, f.Check, EventFinding, f, 0)
	}
}

// readFailsOpen is failsOpen for the read of operation op: a read error taken as a
// miss is also reported as an EventFailedOpen.
func (c *Cache) readFailsOpen(ctx context.Context, op operation, d *namedDriver, key string, err error) bool {
	if !c.failsOpen(ctx, err) {
		return false
	}
	if c.m.wants(EventFailedOpen) {
		c.m.end(op, d, key, EventFailedOpen, err, 0)
	}
	return true
}
