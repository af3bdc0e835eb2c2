// Package lrucache is a capacity-bounded, in-process LRU driver built on
// hashicorp/golang-lru/v2.
//
// It holds at most Capacity entries; a write beyond that evicts the least recently used
// entry (Get and Set count as uses). Every entry has its own TTL; an expired entry is
// dropped when it is read or when it reaches the LRU's tail. The driver starts no
// goroutine. Like the memory driver it keeps Go values as they are: do not mutate a map,
// slice or pointer after storing it.
//
// Every operation runs under one mutex, so Create, Update, Increment, Pull and the lock's
// compare-and-delete are atomic within the process. An eviction can drop a held lock when
// the cache is full: size Capacity for the locks you take, or keep locks on a driver of
// their own.
package lrucache

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"

	"github.com/cachekit/cache/driver"
	"github.com/cachekit/cache/internal/inproc"
	"github.com/cachekit/cache/internal/keywatch"
)

// DefaultCapacity is the capacity when Options.Capacity is 0.
const DefaultCapacity = 1000

// Options configure a [Driver].
type Options struct {
	// Capacity is the most entries the driver holds. Default: DefaultCapacity (1000).
	Capacity int
	// DefaultTTL is used when a caller passes a TTL of 0. Default: 0, no expiry.
	DefaultTTL time.Duration
	// Now is the clock every TTL decision reads. Default: time.Now.
	Now func() time.Time
}

// Driver is the LRU driver. Its methods are safe for concurrent use.
type Driver struct {
	mu         sync.Mutex
	lru        *simplelru.LRU[string, item]
	now        func() time.Time
	defaultTTL time.Duration
	closed     bool
	watchers   keywatch.Registry
	fences     inproc.Fences
	expiry     driver.ExpiryHooks
}

type item struct {
	v   any
	exp int64 // unix nanoseconds; 0: never
}

var (
	_ driver.Driver         = (*Driver)(nil)
	_ driver.Atomic         = (*Driver)(nil)
	_ driver.KeySpace       = (*Driver)(nil)
	_ driver.DefaultTTLer   = (*Driver)(nil)
	_ driver.TTLReader      = (*Driver)(nil)
	_ driver.Modifier       = (*Driver)(nil)
	_ driver.ExpiryNotifier = (*Driver)(nil)
)

// New returns an LRU driver.
func New(o Options) (*Driver, error) {
	if o.Capacity < 0 {
		return nil, fmt.Errorf("lrucache: Capacity %d is negative", o.Capacity)
	}
	if o.DefaultTTL < 0 {
		return nil, fmt.Errorf("lrucache: DefaultTTL %v is negative", o.DefaultTTL)
	}
	if o.Capacity == 0 {
		o.Capacity = DefaultCapacity
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	lru, err := simplelru.NewLRU[string, item](o.Capacity, nil)
	if err != nil {
		return nil, fmt.Errorf("lrucache: %w", err)
	}
	return &Driver{lru: lru, now: o.Now, defaultTTL: o.DefaultTTL}, nil
}

var errClosed = fmt.Errorf("lrucache: %w", driver.ErrClosed)

// DefaultTTL returns Options.DefaultTTL.
func (d *Driver) DefaultTTL() time.Duration { return d.defaultTTL }

func (d *Driver) expiresAt(ttl time.Duration) int64 {
	if ttl <= 0 {
		return 0
	}
	return d.now().Add(ttl).UnixNano()
}

// live returns the live item under key, dropping it if it expired. d.mu is held.
func (d *Driver) live(key string, touch bool) (item, bool) {
	var (
		it item
		ok bool
	)
	if touch {
		it, ok = d.lru.Get(key)
	} else {
		it, ok = d.lru.Peek(key)
	}
	if !ok {
		return item{}, false
	}
	if it.exp != 0 && d.now().UnixNano() >= it.exp {
		d.lru.Remove(key)
		d.expiry.Expired(key)
		return item{}, false
	}
	return it, true
}

// OnExpire adds fn to the functions called with the key of each entry the driver drops
// because its TTL passed: when an operation on the key (or Scan) finds it expired. An
// expired entry evicted from the LRU's tail before anything looked at it, or dropped by
// Flush or Close, is not reported. fn runs under the driver's mutex.
func (d *Driver) OnExpire(fn func(key string)) { d.expiry.OnExpire(fn) }

// Get returns the live value under key and marks it recently used.
func (d *Driver) Get(_ context.Context, key string) (any, bool, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil, false, errClosed
	}
	it, ok := d.live(key, true)
	return it.v, ok, nil
}

// Set stores e, replacing what was there.
func (d *Driver) Set(_ context.Context, e driver.Entry) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return errClosed
	}
	d.lru.Add(e.Key, item{v: e.Value, exp: d.expiresAt(e.TTL)})
	return nil
}

// SetIf writes e when cond holds, atomically.
func (d *Driver) SetIf(_ context.Context, e driver.Entry, cond driver.Condition) (bool, error) {
	if cond != driver.IfAbsent && cond != driver.IfPresent {
		return false, fmt.Errorf("lrucache: unknown condition %v", cond)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return false, errClosed
	}
	if _, found := d.live(e.Key, false); found == (cond == driver.IfAbsent) {
		return false, nil
	}
	d.lru.Add(e.Key, item{v: e.Value, exp: d.expiresAt(e.TTL)})
	return true, nil
}

// CompareAndDelete deletes key if it still holds old.
func (d *Driver) CompareAndDelete(_ context.Context, key string, old any) (bool, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return false, errClosed
	}
	it, ok := d.live(key, false)
	if !ok || !inproc.Equal(it.v, old) {
		return false, nil
	}
	d.lru.Remove(key)
	d.watchers.Notify(key)
	return true, nil
}

// Increment adds delta to the integer under key, keeping its remaining TTL.
func (d *Driver) Increment(_ context.Context, key string, delta int64, ttlIfNew time.Duration) (int64, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return 0, errClosed
	}
	it, ok := d.live(key, true)
	if !ok {
		d.lru.Add(key, item{v: delta, exp: d.expiresAt(ttlIfNew)})
		return delta, nil
	}
	n, err := inproc.Add(it.v, delta)
	if err != nil {
		return 0, fmt.Errorf("lrucache: increment %q: %w", key, err)
	}
	d.lru.Add(key, item{v: n, exp: it.exp})
	return n, nil
}

// Pull gets and deletes key in one step.
func (d *Driver) Pull(_ context.Context, key string) (any, bool, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil, false, errClosed
	}
	it, ok := d.live(key, false)
	if ok {
		d.lru.Remove(key)
		d.watchers.Notify(key)
	}
	return it.v, ok, nil
}

// Delete removes the keys.
func (d *Driver) Delete(_ context.Context, keys ...string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return errClosed
	}
	for _, k := range keys {
		d.lru.Remove(k)
	}
	d.watchers.Notify(keys...)
	return nil
}

// DeleteNamespace removes ns and every key under "ns.".
func (d *Driver) DeleteNamespace(_ context.Context, ns string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return errClosed
	}
	under := ns + "."
	in := func(k string) bool { return k == ns || strings.HasPrefix(k, under) }
	for _, k := range d.lru.Keys() {
		if in(k) {
			d.lru.Remove(k)
		}
	}
	d.watchers.NotifyIf(in)
	return nil
}

// Flush removes every entry.
func (d *Driver) Flush(context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return errClosed
	}
	d.lru.Purge()
	d.watchers.NotifyIf(nil)
	return nil
}

// Extend sets key's TTL to ttl if it still holds old.
func (d *Driver) Extend(_ context.Context, key string, old any, ttl time.Duration) (bool, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return false, errClosed
	}
	it, ok := d.live(key, false)
	if !ok || !inproc.Equal(it.v, old) {
		return false, nil
	}
	d.lru.Add(key, item{v: it.v, exp: d.expiresAt(ttl)})
	return true, nil
}

// CompareAndSwap writes e if e.Key still holds old.
func (d *Driver) CompareAndSwap(_ context.Context, old any, e driver.Entry) (bool, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return false, errClosed
	}
	it, ok := d.live(e.Key, false)
	if !ok || !inproc.Equal(it.v, old) {
		return false, nil
	}
	d.lru.Add(e.Key, d.newItem(it, ok, e))
	d.watchers.Notify(e.Key)
	return true, nil
}

// newItem is the item a write of e stores over cur (found: cur is live).
func (d *Driver) newItem(cur item, found bool, e driver.Entry) item {
	if e.KeepTTL && found {
		return item{v: e.Value, exp: cur.exp}
	}
	return item{v: e.Value, exp: d.expiresAt(e.TTL)}
}

// Modify runs fn on key's value under the driver's mutex.
func (d *Driver) Modify(_ context.Context, key string, fn func(old any, found bool) (driver.Change, error)) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return errClosed
	}
	it, found := d.live(key, true)
	ch, err := fn(it.v, found)
	if err != nil {
		return err
	}
	if ch.Delete {
		d.lru.Remove(key)
	} else {
		d.lru.Add(key, d.newItem(it, found, ch.Entry))
	}
	d.watchers.Notify(key)
	return nil
}

// CreateFenced creates e if absent and returns the key's next fencing number. The
// counters are kept beside the LRU, never evicted, until Close.
func (d *Driver) CreateFenced(_ context.Context, e driver.Entry) (int64, bool, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return 0, false, errClosed
	}
	if _, found := d.live(e.Key, false); found {
		return 0, false, nil
	}
	d.lru.Add(e.Key, item{v: e.Value, exp: d.expiresAt(e.TTL)})
	return d.fences.Next(e.Key), true, nil
}

// TTL returns key's remaining TTL (0: no expiry). It does not count as a use.
func (d *Driver) TTL(_ context.Context, key string) (time.Duration, bool, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return 0, false, errClosed
	}
	it, ok := d.live(key, false)
	if !ok {
		return 0, false, nil
	}
	if it.exp == 0 {
		return 0, true, nil
	}
	return max(time.Duration(it.exp-d.now().UnixNano()), time.Nanosecond), true, nil
}

// Watch returns a channel closed when key is next deleted, or when ctx ends. An
// eviction does not count as a delete.
func (d *Driver) Watch(ctx context.Context, key string) (<-chan struct{}, error) {
	d.mu.Lock()
	closed := d.closed
	d.mu.Unlock()
	if closed {
		return nil, errClosed
	}
	return d.watchers.Watch(ctx, key)
}

// Scan calls fn with every live key that starts with prefix. fn runs without the
// driver's lock held, on a copy of the keys taken at the start.
func (d *Driver) Scan(_ context.Context, prefix string, fn func(string) bool) error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return errClosed
	}
	var keys []string
	for _, k := range d.lru.Keys() {
		if _, ok := d.live(k, false); ok && strings.HasPrefix(k, prefix) {
			keys = append(keys, k)
		}
	}
	d.mu.Unlock()
	for _, k := range keys {
		if !fn(k) {
			break
		}
	}
	return nil
}

// Len returns the number of entries, expired ones not yet dropped included.
func (d *Driver) Len() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.lru.Len()
}

// Close drops every entry. Afterwards every method returns an error matching
// driver.ErrClosed. The driver starts no goroutine, so there is none to stop.
func (d *Driver) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.closed = true
	d.lru.Purge()
	return nil
}
