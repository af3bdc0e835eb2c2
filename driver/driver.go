// Package driver defines the interfaces that cache drivers implement.
//
// Most code should use package [github.com/cachekit/cache] instead. This package is for
// people who write drivers: it imports nothing from the cache package, so a driver never
// depends on the front end.
//
// # The contract
//
// Every driver implements [Driver]: Get, Set (always writes), Delete and Close. The
// manager (package cache) owns everything that is the same for all drivers: prefixes and
// namespaces (a driver only ever sees final keys), TTL validation and the default TTL,
// the codec, single-flight, and the lock protocol. A driver owns storage and the atomic
// primitives, nothing else.
//
// Keys are non-empty strings; the manager rejects an empty key before a driver sees it.
// A TTL handed to a driver is already resolved: ttl > 0 expires after ttl, ttl == 0 means
// the entry never expires. A driver never sees a negative TTL, nor one longer than
// [MaxTTL], so now + ttl never overflows.
//
// All methods may be called concurrently from many goroutines. After Close, every method
// returns an error that matches [ErrClosed] with errors.Is; Close itself is idempotent.
//
// # Values
//
// A driver either keeps Go values as they are (in-process drivers), or stores bytes. A
// byte driver implements [Encoder]: the manager then hands it the codec's bytes on every
// write and expects the same bytes back on reads, compares, and pulls. A driver without
// [Encoder] receives and returns the caller's Go values unchanged.
//
// # Bundles
//
// Every store offers the same primitives, so they come in two bundles that every driver
// implements ([Atomic] and [KeySpace]), discovered once by the manager. A store that
// cannot do one of their operations returns an error that matches errors.ErrUnsupported
// from it, and every cache operation built on it fails with that error: the manager never
// emulates an atomic step with get-then-set. A driver that lacks a bundle still works
// for plain reads and writes: the manager then treats every method of the missing
// bundle as unsupported (and drivertest fails it).
//
//   - [Atomic]: conditional writes, compare-and-delete, compare-and-swap, extend, fenced
//     create, increment, pull, and the watch that wakes a lock waiter. Locks, Once,
//     distributed Remember, Create and Update, counters, Pull and Modify are built on it.
//   - [KeySpace]: namespace delete, flush and scan. RemoveNamespace, Flush, Scan,
//     ListLocks and cachectl's keys and locks are built on it.
//
// # Optional capabilities
//
// Like database/sql/driver, the rest is optional and discovered by type assertion, in one
// place in the manager. Each interface says what the manager does when it is absent:
//
//   - [Batcher]: many keys in one call. Absent: the manager loops.
//   - [DefaultTTLer]: the TTL used when a caller passes 0. Absent: 0 means no expiry.
//   - [TTLReader]: the remaining TTL of a key. Absent: a lock handle's TTL and
//     InspectLock report the TTL as unknown (-1).
//   - [Lister]: native lists (Redis). Absent: cache.NewList keeps a list as one value
//     changed with cache.Modify.
//   - [Modifier]: run a function on a key's value in one atomic step (in-process
//     drivers). Absent: cache.Modify uses [Atomic]'s CompareAndSwap in a bounded loop.
//   - [ExpiryNotifier]: a call for each entry the driver drops because its TTL passed.
//     Absent: expiry is not reported (no "expired" events).
//   - [Near]: decoded copies kept in process and dropped when the store reports a
//     change (a near cache). Absent: every read goes to the store.
//   - [Encoder]: the driver stores bytes; see above.
//
// # Methods the manager or cachectl discovers
//
// These methods are declared by their consumers, which discover them by type assertion;
// this package declares no interface for them:
//
//   - OnBreaker(fn func(open bool)), for a driver with a circuit breaker: package cache
//     calls it once per cache that registers the driver. The driver calls fn once per
//     change of the breaker's state (open true when it opens, false when it closes;
//     never twice in a row with the same value), from its own goroutine: fn must be
//     quick and must not call the driver. Absent: no "breaker.opened" or
//     "breaker.closed" events, and Metrics.BreakerOpen stays false.
//   - OnNear(fn func(serving bool)), for a driver with a near tier ([Near]) that knows
//     when it may serve its copies: package cache calls it once per cache that
//     registers the driver. The driver calls fn once per change: serving false when
//     the near tier stops serving copies (it lost what proved them current: a lost
//     connection, a failed check, a change of the store's nodes), true when it serves
//     them again after such a drop. The first time it starts serving, after the
//     driver's start, is not a change and is not reported. The calls alternate (never
//     twice in a row with the same value), are never concurrent, and come in the order
//     of the changes, from the driver's own goroutines, outside its locks: fn must be
//     quick and must not call the driver. Absent: no "near.dropped" or "near.restored"
//     events.
//   - Doctor(ctx context.Context) []Finding: checks of the store's settings against what
//     locks and Once need. See [Finding]. cachectl doctor runs them, and package cache
//     does at its start with cache.Config.CheckOnStart ([StartChecks]), reporting each
//     warning and error as a "finding" event. Absent: cachectl doctor reports that the
//     driver has no checks, and the cache runs none.
package driver

import (
	"context"
	"errors"
	"time"
)

// MaxTTL is the longest TTL the manager hands a driver: about 100 years, which it means
// as practically forever. The manager stores a longer TTL (up to math.MaxInt64, what
// callers write for forever), or an ExpiresAt further away, as MaxTTL, so a driver can
// add any TTL it is given to the current time: time.Now().Add(MaxTTL).UnixNano() fits
// an int64 until the year 2162, and so do Redis's PX and otter's expiry arithmetic.
const MaxTTL = 100 * 365 * 24 * time.Hour

// ErrClosed is returned, wrapped, by every method of a driver after its Close.
var ErrClosed = errors.New("cache: driver closed")

// ErrForeign is wrapped by a driver's error for a key that holds data the cache did not
// write and cannot read: a Redis value of another type, something that is not a regular
// file where the file driver keeps an entry. The cache reports it and leaves the data
// alone: reads return the error (never a miss), and a lock on such a key fails with an
// error that matches cache.ErrNotALock too.
var ErrForeign = errors.New("cache: the key holds data the cache did not write")

// ErrNotInteger is returned, wrapped, by [Atomic]'s Increment when the key holds a value that
// is not an integer. The key is left as it was.
var ErrNotInteger = errors.New("cache: value is not an integer")

// Driver is the interface every cache driver implements.
//
// All methods may be called concurrently. Get on a missing or expired key returns
// found == false and a nil error; a miss is never an error.
type Driver interface {
	// Get returns the value stored under key. found is false when the key is missing or
	// expired. For an [Encoder] driver, v is the []byte that Set was given.
	Get(ctx context.Context, key string) (v any, found bool, err error)
	// Set stores e.Value under e.Key, replacing what was there, with e.TTL (0: no expiry).
	Set(ctx context.Context, e Entry) error
	// Delete removes the keys. Missing keys are not an error.
	Delete(ctx context.Context, keys ...string) error
	// Close releases the driver's resources and stops every goroutine it started.
	// It is idempotent.
	Close() error
}

// Entry is one write.
type Entry struct {
	Key   string
	Value any
	// TTL is the resolved time to live: > 0 expires, 0 never expires.
	TTL time.Duration
	// Tags are the tags of SetOptions.Tags given with this write (a Tags view's own
	// tags are not repeated here). The manager keeps the tag indexes itself, in records
	// of their own changed with Modify, so a driver needs to store nothing for them.
	Tags []string
	// KeepTTL, on a write that replaces a live value (CompareAndSwap, [Modifier]), keeps the
	// key's remaining TTL instead of setting TTL. Where the key is new, TTL applies.
	KeepTTL bool
	// NoSlide marks an entry whose expiry reads must never push back, whatever the
	// driver's sliding policy: a lock, whose TTL is the safety net for a crashed holder,
	// must not be kept alive by someone reading its owner.
	NoSlide bool
}

// Condition selects a conditional write for [Atomic]'s SetIf.
type Condition uint8

const (
	// IfAbsent writes only when the key is missing or expired (SET NX).
	IfAbsent Condition = iota + 1
	// IfPresent writes only when the key exists and has not expired (SET XX).
	IfPresent
)

// String returns "IfAbsent" or "IfPresent".
func (c Condition) String() string {
	switch c {
	case IfAbsent:
		return "IfAbsent"
	case IfPresent:
		return "IfPresent"
	}
	return "Condition(?)"
}

// Atomic is the bundle of atomic primitives that every driver implements: each method's
// check and write are one step that no other writer, in any process that shares the
// store, can come between. The lock, Once, counters, Pull and Modify are built on it.
// A store that cannot do one of them returns an error matching errors.ErrUnsupported
// from it (Watch included: waiters then poll).
type Atomic interface {
	// SetIf writes e when cond holds and reports whether it wrote. The lock is built on
	// IfAbsent; cache.SetOptions.OnConflict's Create and Update on both.
	SetIf(ctx context.Context, e Entry, cond Condition) (written bool, err error)
	// CompareAndDelete deletes key if its live value equals old and reports whether it
	// deleted. For an [Encoder] driver, old is []byte and equality is bytes.Equal; for an
	// in-process driver it is Go's == on the stored value (old is always comparable).
	// The lock's release is built on it.
	CompareAndDelete(ctx context.Context, key string, old any) (deleted bool, err error)
	// CompareAndSwap writes e if e.Key's live value equals old (as in CompareAndDelete)
	// and reports whether it wrote.
	CompareAndSwap(ctx context.Context, old any, e Entry) (swapped bool, err error)
	// Extend sets key's TTL to ttl (> 0) if its live value equals old (as in
	// CompareAndDelete) and reports whether it did. Lock renewal is built on it.
	Extend(ctx context.Context, key string, old any, ttl time.Duration) (extended bool, err error)
	// CreateFenced is a create-if-absent that, when it writes, also increments a counter
	// the driver keeps for that key, in the same atomic step, and returns the new count.
	// The counter outlives the key (it is kept in a record of its own, documented by
	// each driver), so the numbers handed out for one key strictly increase, in every
	// process that shares the store: a storage system that remembers the highest number
	// it has seen can then reject a write from a holder whose lock has since passed on.
	CreateFenced(ctx context.Context, e Entry) (fence int64, written bool, err error)
	// Increment adds delta to the integer stored under key and returns the new value. A
	// missing key counts as 0 and is created with ttlIfNew (0: no expiry). An existing key
	// keeps its remaining TTL. A non-integer value is an error matching [ErrNotInteger],
	// and the value is left as it was. An [Encoder] driver stores the counter as the
	// decimal text of the number, which its codec must read as an integer.
	Increment(ctx context.Context, key string, delta int64, ttlIfNew time.Duration) (int64, error)
	// Pull gets and deletes key in one step, so that each stored value is handed out at
	// most once.
	Pull(ctx context.Context, key string) (v any, found bool, err error)
	// Watch returns a channel that is closed when key is next released by
	// CompareAndDelete or swapped by CompareAndSwap, by this process or, for a shared
	// store, by any other; and closed too when ctx ends, which also frees what the watch
	// holds. A driver may report other deletes too (the in-process drivers report Delete,
	// Pull, DeleteNamespace and Flush; Redis does not, as that would cost a command per
	// key). It is a hint: a waiter must still try to take the key, and polls as well,
	// because expiry and unreported deletes are not seen.
	Watch(ctx context.Context, key string) (<-chan struct{}, error)
}

// KeySpace is the bundle of operations on many keys at once that every driver
// implements. A store that cannot do one of them returns an error matching
// errors.ErrUnsupported from it.
type KeySpace interface {
	// DeleteNamespace deletes the key ns itself and every key that starts with ns + ".",
	// and never a key such as ns + "X".
	DeleteNamespace(ctx context.Context, ns string) error
	// Flush deletes everything the driver holds.
	Flush(ctx context.Context) error
	// Scan calls fn with every live key that starts with prefix ("" for every key), in
	// no particular order, until fn returns false. Keys written or deleted during the
	// scan may or may not be seen; the driver's own bookkeeping keys are included. It
	// serves operators (cachectl keys and locks) and need not be fast or a consistent
	// snapshot.
	Scan(ctx context.Context, prefix string, fn func(key string) bool) error
}

// Batcher is implemented by drivers that read and write many keys in one call.
type Batcher interface {
	// GetMany returns one value and one found flag per key, in the order of keys.
	GetMany(ctx context.Context, keys []string) (vals []any, found []bool, err error)
	// SetMany writes the entries. The writes need not be atomic as a group.
	SetMany(ctx context.Context, entries []Entry) error
}

// DefaultTTLer is implemented by drivers that have a default TTL, used when a caller
// passes a TTL of 0. The manager caps it at [MaxTTL] like any other TTL.
type DefaultTTLer interface {
	DefaultTTL() time.Duration
}

// Encoder is implemented by drivers that store bytes. The manager encodes every value
// with the returned [Codec] before a write and decodes with it after a read.
type Encoder interface {
	Codec() Codec
}

// Codec turns values into bytes and back.
type Codec interface {
	Marshal(v any) ([]byte, error)
	Unmarshal(data []byte, v any) error
}

// TTLReader is implemented by drivers that can tell a key's remaining TTL.
type TTLReader interface {
	// TTL returns the remaining time to live of key: > 0, or 0 for a key that never
	// expires. found is false for a missing or expired key.
	TTL(ctx context.Context, key string) (ttl time.Duration, found bool, err error)
}

// Modifier is implemented by in-process drivers that can run a function on a key's
// value in one atomic step, so that read-modify-write needs no compare-and-swap (whose
// == comparison does not work on maps and slices). fn runs while the driver holds the
// key: it must be quick and must not call the driver.
type Modifier interface {
	// Modify calls fn with key's live value (found false for a missing or expired key)
	// and applies the Change it returns, unless fn returns an error, which Modify
	// returns with nothing changed.
	Modify(ctx context.Context, key string, fn func(old any, found bool) (Change, error)) error
}

// Change is what a [Modifier]'s function asks for.
type Change struct {
	// Delete removes the key (a no-op on a missing key).
	Delete bool
	// Entry is written unless Delete is set: its Value, its TTL, and KeepTTL to keep the
	// remaining TTL of an existing key. Entry.Key is ignored.
	Entry Entry
}

// Lister is implemented by drivers with native lists (Redis lists). Values are what the
// manager hands over: codec bytes for an [Encoder] driver, one per item. Every operation
// keeps the key's TTL; a list left empty is deleted; indexes are Redis's (LRANGE, LTRIM):
// inclusive, negative ones counting from the end.
type Lister interface {
	// ListPush appends vals (or, with front, prepends them one by one, as LPUSH) and
	// returns the new length. A new list gets ttlIfNew (0: no expiry).
	ListPush(ctx context.Context, key string, vals []any, front bool, ttlIfNew time.Duration) (int64, error)
	// ListPop removes and returns the last item (the first, with front).
	ListPop(ctx context.Context, key string, front bool) (v any, found bool, err error)
	// ListRange returns the items from start to stop.
	ListRange(ctx context.Context, key string, start, stop int64) ([]any, error)
	// ListLen returns the length (0 for a missing key).
	ListLen(ctx context.Context, key string) (int64, error)
	// ListTrim keeps the items from start to stop.
	ListTrim(ctx context.Context, key string, start, stop int64) error
}
