// Package memorycache is the in-process memory driver, built on otter v2
// (github.com/maypok86/otter/v2).
//
// It keeps the Go values themselves: nothing is encoded, and a Get hands back what Set
// stored. Maps, slices and pointers are therefore shared with the caller: do not mutate a
// value after storing it.
//
// Two behaviours, under the names other cache libraries use for them:
//
//   - "memory": Options{} — per-entry TTL, fixed from the write.
//   - "memoryExtended": Options{Sliding: true} — every hit (Get, Has, Remember's read)
//     pushes the entry's expiry back by the entry's own TTL. An entry that has expired never
//     comes back. Conditional-write probes, Increment and Pull never slide, and a lock
//     never slides at all: reading its owner does not keep a crashed holder's lock alive.
//
// A Get does not read the time: it reads a clock that a goroutine of the driver sets from
// the monotonic clock once a millisecond, and that lags behind by up to that, or by as
// long as the goroutine waits for a CPU (tens or hundreds of milliseconds on a busy
// machine). A plain value may expire that much early or late. A lock never depends on
// the lag: every operation on a lock entry (driver.Entry.NoSlide) and every Extend,
// compare-and-delete and TTL first brings the clock up to the time, so that a lock entry
// lives its whole TTL from its write, and the lease that cache.Lock keeps on its own
// clock ends before it.
//
// Every operation is atomic within the process: Create, Update, Increment, Pull and the
// lock's compare-and-delete each run under otter's per-key lock. The driver is unbounded
// unless MaxItems or MaxBytes is set; then otter evicts the entries least likely to be used
// again, which can include a lock (size the bound for it, or keep locks on a driver of
// their own).
package memorycache

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/maypok86/otter/v2"

	"github.com/cachekit/cache/driver"
	"github.com/cachekit/cache/internal/inproc"
	"github.com/cachekit/cache/internal/keywatch"
)

// Options configure a [Driver]. The zero value is an unbounded memory cache with no
// default TTL.
type Options struct {
	// DefaultTTL is used when a caller passes a TTL of 0. Default: 0, no expiry.
	DefaultTTL time.Duration
	// Sliding turns on sliding expiry (the "memoryExtended" behaviour): each hit resets
	// the entry's expiry to now + its TTL. Default: false.
	Sliding bool
	// MaxItems bounds the number of entries. Default: 0, unbounded.
	MaxItems int
	// MaxBytes bounds the estimated size of the entries, as given by Cost. At most one
	// of MaxItems and MaxBytes may be set. Default: 0, unbounded.
	MaxBytes int64
	// Cost estimates an entry's size in bytes for MaxBytes. Default: the length of the
	// key plus, for strings and byte slices, their length, plus 64 bytes of overhead.
	Cost func(key string, v any) uint32
	// Now is the clock every TTL decision reads. Default: the driver's coarse clock (the
	// monotonic time, read once a millisecond, and at once for every operation on a
	// lock; see the package doc). Tests pass a fake clock to step through TTLs in no
	// time.
	Now func() time.Time
}

// Driver is the memory driver. Its methods are safe for concurrent use.
type Driver struct {
	c          *otter.Cache[string, *item]
	coarse     *coarseClock // nil with Options.Now
	defaultTTL time.Duration
	closed     atomic.Bool
	watchers   keywatch.Registry
	fences     inproc.Fences
	expiry     driver.ExpiryHooks
}

// item is one stored entry. Items are never mutated after they are stored.
type item struct {
	v    any
	ttl  time.Duration // 0: no expiry
	keep bool          // an update that keeps the remaining TTL (Increment)
	// noSlide: reads never push the expiry back (a lock)
	noSlide bool
}

const never = time.Duration(math.MaxInt64)

var (
	_ driver.Driver         = (*Driver)(nil)
	_ driver.Atomic         = (*Driver)(nil)
	_ driver.KeySpace       = (*Driver)(nil)
	_ driver.DefaultTTLer   = (*Driver)(nil)
	_ driver.TTLReader      = (*Driver)(nil)
	_ driver.Modifier       = (*Driver)(nil)
	_ driver.ExpiryNotifier = (*Driver)(nil)
	_ inproc.JoinGetter     = (*Driver)(nil)
)

// newItem is the item a write of e over cur (nil: none) stores.
func newItem(cur *item, e driver.Entry) *item {
	if e.KeepTTL && cur != nil {
		return &item{v: e.Value, ttl: cur.ttl, keep: true, noSlide: e.NoSlide}
	}
	return &item{v: e.Value, ttl: e.TTL, noSlide: e.NoSlide}
}

// New returns a memory driver.
func New(o Options) (*Driver, error) {
	switch {
	case o.DefaultTTL < 0:
		return nil, fmt.Errorf("memorycache: DefaultTTL %v is negative", o.DefaultTTL)
	case o.MaxItems < 0 || o.MaxBytes < 0:
		return nil, errors.New("memorycache: MaxItems and MaxBytes must not be negative")
	case o.MaxItems > 0 && o.MaxBytes > 0:
		return nil, errors.New("memorycache: set at most one of MaxItems and MaxBytes")
	}
	oo := &otter.Options[string, *item]{MaximumSize: o.MaxItems}
	if o.Sliding {
		oo.ExpiryCalculator = slidingExpiry{}
	} else {
		// otter's own writing calculator: it never calls back on a read, which keeps a
		// Get hit free of a second clock read and an Entry copy.
		oo.ExpiryCalculator = otter.ExpiryWritingFunc(writeTTL)
	}
	if o.MaxBytes > 0 {
		cost := o.Cost
		if cost == nil {
			cost = defaultCost
		}
		oo.MaximumWeight = uint64(o.MaxBytes)
		oo.Weigher = func(k string, it *item) uint32 { return cost(k, it.v) }
	}
	d := &Driver{defaultTTL: o.DefaultTTL}
	// Expired entries are reported when otter drops them: when a read or a write meets
	// one, or its timer wheel does.
	oo.OnAtomicDeletion = func(e otter.DeletionEvent[string, *item]) {
		if e.Cause == otter.CauseExpiration && d.expiry.Active() && !d.closed.Load() {
			d.expiry.Expired(e.Key)
		}
	}
	var coarse *coarseClock
	if o.Now != nil {
		oo.Clock = clock(o.Now)
	} else {
		// A clock read per Get costs as much as the rest of the Get: read the time once a
		// millisecond instead, and bring it up to the time for the writes of locks (see
		// coarseClock).
		coarse = newCoarseClock(time.Millisecond)
		oo.Clock = coarse
	}
	c, err := otter.New(oo)
	if err != nil {
		if coarse != nil {
			coarse.Stop()
		}
		return nil, fmt.Errorf("memorycache: %w", err)
	}
	d.c, d.coarse = c, coarse
	return d, nil
}

// OnExpire adds fn to the functions called with the key of each entry that otter drops
// because its TTL passed: when a read or a write meets it, or when otter's timer wheel
// (run by its maintenance, about once a second, or on later calls with Options.Now)
// reaches it. Entries dropped by Close are not reported.
func (d *Driver) OnExpire(fn func(key string)) { d.expiry.OnExpire(fn) }

func defaultCost(k string, v any) uint32 {
	n := len(k) + 64
	switch v := v.(type) {
	case string:
		n += len(v)
	case []byte:
		n += len(v)
	}
	return uint32(min(n, math.MaxUint32))
}

// writeTTL gives otter each entry's own TTL on a write; an Increment keeps the
// remaining one.
func writeTTL(e otter.Entry[string, *item]) time.Duration {
	if e.Value.keep {
		return e.ExpiresAfter()
	}
	return ttlOf(e.Value)
}

// slidingExpiry is writeTTL plus, on every read, the entry's TTL again (memoryExtended),
// except for entries that must not slide.
type slidingExpiry struct{}

func (slidingExpiry) ExpireAfterCreate(e otter.Entry[string, *item]) time.Duration {
	return ttlOf(e.Value)
}

func (slidingExpiry) ExpireAfterUpdate(e otter.Entry[string, *item], _ *item) time.Duration {
	return writeTTL(e)
}

func (slidingExpiry) ExpireAfterRead(e otter.Entry[string, *item]) time.Duration {
	if e.Value.ttl > 0 && !e.Value.noSlide {
		return e.Value.ttl
	}
	return e.ExpiresAfter()
}

func ttlOf(it *item) time.Duration {
	if it.ttl > 0 {
		return it.ttl
	}
	return never
}

// clock adapts a func() time.Time to otter's Clock. It has no ticks: with a fake clock
// expired entries are dropped when they are read or written, not by a background sweep.
type clock func() time.Time

func (c clock) NowNano() int64                    { return c().UnixNano() }
func (clock) Tick(time.Duration) <-chan time.Time { return nil }

var errClosed = fmt.Errorf("memorycache: %w", driver.ErrClosed)

// exact brings the default clock up to the time before an operation on a lock (see
// coarseClock), so that the entry's expiry that otter then computes, under the key's
// lock, is the time of the write plus the TTL. The lock counts the lease from a reading
// of the monotonic clock taken before the call, and so before this one: the store can
// never let another holder in while the lease runs.
//
// The paths of a lock, and the clock each one reads:
//
//   - Create if absent (SetIf IfAbsent, CreateFenced) with NoSlide: exact. Its check of
//     the holder's entry reads the exact time too; it could not read one that is ahead.
//   - Extend: exact; the lock counts the new lease from before the call.
//   - CompareAndDelete (the release): exact, so that a release after the TTL finds the
//     lock gone. Nothing is written; a clock that lagged would at worst let the holder
//     delete its own expired entry, which no one else held (the token compares equal).
//   - CompareAndSwap and Set of an entry with NoSlide (Once's records): exact.
//   - TTL (InspectLock): exact, so that it reports no more than is left.
//   - Get (the owner's read while waiting, InspectLock): coarse. A lag makes an expired
//     lock look held a little longer, never a held lock look free; the acquiring write
//     decides on the exact time anyway.
//
// Plain values keep the coarse clock: they may expire early or late by its lag, which
// no caller relies on.
func (d *Driver) exact() {
	if d.coarse != nil {
		d.coarse.sync()
	}
}

func (d *Driver) check() error {
	if d.closed.Load() {
		return errClosed
	}
	return nil
}

// DefaultTTL returns Options.DefaultTTL.
func (d *Driver) DefaultTTL() time.Duration { return d.defaultTTL }

// Get returns the live value under key.
func (d *Driver) Get(ctx context.Context, key string) (any, bool, error) {
	if err := d.check(); err != nil {
		return nil, false, err
	}
	it, ok := d.c.GetIfPresent(key)
	if !ok {
		return nil, false, nil
	}
	return it.v, true, nil
}

// GetJoined is Get(ctx, scope+"."+key) (inproc.JoinGetter): the key is joined in a
// buffer on the stack and only looked up, never kept, so a read under a prefix or a
// namespace allocates nothing.
func (d *Driver) GetJoined(ctx context.Context, scope, key string) (any, bool, error) {
	if err := d.check(); err != nil {
		return nil, false, err
	}
	var buf [128]byte
	var k string
	if n := len(scope) + 1 + len(key); n <= len(buf) {
		b := append(append(append(buf[:0], scope...), '.'), key...)
		k = unsafe.String(unsafe.SliceData(b), n)
	} else {
		k = scope + "." + key
	}
	it, ok := d.c.GetIfPresent(k)
	if !ok {
		return nil, false, nil
	}
	return it.v, true, nil
}

// Set stores e, replacing what was there.
func (d *Driver) Set(ctx context.Context, e driver.Entry) error {
	if err := d.check(); err != nil {
		return err
	}
	if e.NoSlide {
		d.exact()
	}
	d.c.Set(e.Key, &item{v: e.Value, ttl: e.TTL, noSlide: e.NoSlide})
	return nil
}

// SetIf writes e when cond holds, atomically.
func (d *Driver) SetIf(ctx context.Context, e driver.Entry, cond driver.Condition) (bool, error) {
	if err := d.check(); err != nil {
		return false, err
	}
	if cond != driver.IfAbsent && cond != driver.IfPresent {
		return false, fmt.Errorf("memorycache: unknown condition %v", cond)
	}
	if e.NoSlide {
		d.exact()
	}
	var written bool
	d.c.Compute(e.Key, func(old *item, found bool) (*item, otter.ComputeOp) {
		if found == (cond == driver.IfAbsent) {
			return old, otter.CancelOp
		}
		written = true
		return &item{v: e.Value, ttl: e.TTL, noSlide: e.NoSlide}, otter.WriteOp
	})
	return written, nil
}

// CompareAndDelete deletes key if it still holds old.
func (d *Driver) CompareAndDelete(ctx context.Context, key string, old any) (bool, error) {
	if err := d.check(); err != nil {
		return false, err
	}
	d.exact()
	var deleted bool
	d.c.Compute(key, func(cur *item, found bool) (*item, otter.ComputeOp) {
		if found && inproc.Equal(cur.v, old) {
			deleted = true
			return cur, otter.InvalidateOp
		}
		return cur, otter.CancelOp
	})
	if deleted {
		d.watchers.Notify(key)
	}
	return deleted, nil
}

// Increment adds delta to the integer under key, keeping its remaining TTL.
func (d *Driver) Increment(ctx context.Context, key string, delta int64, ttlIfNew time.Duration) (int64, error) {
	if err := d.check(); err != nil {
		return 0, err
	}
	var (
		n   int64
		err error
	)
	d.c.Compute(key, func(cur *item, found bool) (*item, otter.ComputeOp) {
		if !found {
			n = delta
			return &item{v: n, ttl: ttlIfNew}, otter.WriteOp
		}
		if n, err = inproc.Add(cur.v, delta); err != nil {
			return cur, otter.CancelOp
		}
		return &item{v: n, ttl: cur.ttl, keep: true, noSlide: cur.noSlide}, otter.WriteOp
	})
	if err != nil {
		return 0, fmt.Errorf("memorycache: increment %q: %w", key, err)
	}
	return n, nil
}

// Pull gets and deletes key in one step.
func (d *Driver) Pull(ctx context.Context, key string) (any, bool, error) {
	if err := d.check(); err != nil {
		return nil, false, err
	}
	var (
		v     any
		found bool
	)
	d.c.Compute(key, func(cur *item, ok bool) (*item, otter.ComputeOp) {
		if !ok {
			return cur, otter.CancelOp
		}
		v, found = cur.v, true
		return cur, otter.InvalidateOp
	})
	if found {
		d.watchers.Notify(key)
	}
	return v, found, nil
}

// Delete removes the keys.
func (d *Driver) Delete(ctx context.Context, keys ...string) error {
	if err := d.check(); err != nil {
		return err
	}
	for _, k := range keys {
		d.c.Invalidate(k)
	}
	d.watchers.Notify(keys...)
	return nil
}

// DeleteNamespace removes ns and every key under "ns.". It scans every key: O(entries).
func (d *Driver) DeleteNamespace(ctx context.Context, ns string) error {
	if err := d.check(); err != nil {
		return err
	}
	under := ns + "."
	in := func(k string) bool { return k == ns || strings.HasPrefix(k, under) }
	for k := range d.c.Keys() {
		if in(k) {
			d.c.Invalidate(k)
		}
	}
	d.watchers.NotifyIf(in)
	return nil
}

// Flush removes every entry.
func (d *Driver) Flush(ctx context.Context) error {
	if err := d.check(); err != nil {
		return err
	}
	d.c.InvalidateAll()
	d.watchers.NotifyIf(nil)
	return nil
}

// Extend sets key's TTL to ttl if it still holds old.
func (d *Driver) Extend(_ context.Context, key string, old any, ttl time.Duration) (bool, error) {
	if err := d.check(); err != nil {
		return false, err
	}
	d.exact()
	var extended bool
	d.c.Compute(key, func(cur *item, found bool) (*item, otter.ComputeOp) {
		if !found || !inproc.Equal(cur.v, old) {
			return cur, otter.CancelOp
		}
		extended = true
		return &item{v: cur.v, ttl: ttl, noSlide: cur.noSlide}, otter.WriteOp
	})
	return extended, nil
}

// CompareAndSwap writes e if e.Key still holds old.
func (d *Driver) CompareAndSwap(_ context.Context, old any, e driver.Entry) (bool, error) {
	if err := d.check(); err != nil {
		return false, err
	}
	if e.NoSlide {
		d.exact()
	}
	var swapped bool
	d.c.Compute(e.Key, func(cur *item, found bool) (*item, otter.ComputeOp) {
		if !found || !inproc.Equal(cur.v, old) {
			return cur, otter.CancelOp
		}
		swapped = true
		return newItem(cur, e), otter.WriteOp
	})
	if swapped {
		d.watchers.Notify(e.Key)
	}
	return swapped, nil
}

// CreateFenced creates e if absent and returns the key's next fencing number. The
// counters live beside the entries, are never evicted, and last until Close.
func (d *Driver) CreateFenced(_ context.Context, e driver.Entry) (int64, bool, error) {
	if err := d.check(); err != nil {
		return 0, false, err
	}
	d.exact()
	var fence int64
	d.c.Compute(e.Key, func(cur *item, found bool) (*item, otter.ComputeOp) {
		if found {
			return cur, otter.CancelOp
		}
		fence = d.fences.Next(e.Key)
		return &item{v: e.Value, ttl: e.TTL, noSlide: e.NoSlide}, otter.WriteOp
	})
	return fence, fence != 0, nil
}

// TTL returns key's remaining TTL (0: no expiry). It does not count as a read.
func (d *Driver) TTL(_ context.Context, key string) (time.Duration, bool, error) {
	if err := d.check(); err != nil {
		return 0, false, err
	}
	d.exact()
	e, ok := d.c.GetEntryQuietly(key)
	if !ok {
		return 0, false, nil
	}
	if e.Value.ttl == 0 { // never expires; Increment keeps ttl 0 too
		return 0, true, nil
	}
	return max(e.ExpiresAfter(), time.Nanosecond), true, nil
}

// Modify runs fn on key's value under otter's per-key lock.
func (d *Driver) Modify(_ context.Context, key string, fn func(old any, found bool) (driver.Change, error)) error {
	if err := d.check(); err != nil {
		return err
	}
	var (
		err     error
		changed bool
	)
	d.c.Compute(key, func(cur *item, found bool) (*item, otter.ComputeOp) {
		var old any
		if found {
			old = cur.v
		}
		var ch driver.Change
		if ch, err = fn(old, found); err != nil {
			return cur, otter.CancelOp
		}
		changed = true
		if ch.Delete {
			return cur, otter.InvalidateOp
		}
		if !found {
			cur = nil
		}
		return newItem(cur, ch.Entry), otter.WriteOp
	})
	if changed {
		d.watchers.Notify(key)
	}
	return err
}

// Watch returns a channel closed when key is next deleted, or when ctx ends.
func (d *Driver) Watch(ctx context.Context, key string) (<-chan struct{}, error) {
	if err := d.check(); err != nil {
		return nil, err
	}
	return d.watchers.Watch(ctx, key)
}

// Scan calls fn with every live key that starts with prefix.
func (d *Driver) Scan(_ context.Context, prefix string, fn func(string) bool) error {
	if err := d.check(); err != nil {
		return err
	}
	for k := range d.c.Keys() {
		if strings.HasPrefix(k, prefix) && !fn(k) {
			break
		}
	}
	return nil
}

// Len returns the number of entries, after applying pending evictions and expirations.
func (d *Driver) Len() int {
	d.c.CleanUp()
	return d.c.EstimatedSize()
}

// Close stops otter's maintenance goroutine and drops every entry. Afterwards every
// method returns an error matching driver.ErrClosed.
func (d *Driver) Close() error {
	if d.closed.Swap(true) {
		return nil
	}
	d.c.StopAllGoroutines()
	if d.coarse != nil {
		d.coarse.Stop()
	}
	d.c.InvalidateAll()
	return nil
}
