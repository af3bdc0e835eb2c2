// Package keywatch is the one key-to-waiters registry of the drivers: a waiter registers
// for a key and gets a channel; the driver's event loop calls Notify with the keys that
// changed (a release, a file removed, a NOTIFY, a Pub/Sub message), which closes the
// channels of their waiters. The drivers differ only in where their events come from.
package keywatch

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/cachekit/cache/driver"
)

// ErrClosed is returned by Add after Close.
var ErrClosed = driver.ErrClosed

// Hooks let a driver follow what its registry holds. Each is optional and is called with
// the registry's lock held: it must be quick and must not call the registry.
type Hooks struct {
	// First is called when a key gets its first waiter (a subscription to open). An
	// error refuses the waiter, and Add returns it.
	First func(key string) error
	// Last is called when a key loses its last waiter, unless the registry is closed.
	Last func(key string)
	// Active is called when the number of waiters goes from 0 to 1 (true) or from 1 to 0
	// (false), unless the registry is closed.
	Active func(on bool)
	// Arm makes the keys of new waiters unarmed: [Waiter.Armed] is then closed only by
	// [Registry.Arm] (a subscription that the store has confirmed).
	Arm bool
}

// Registry holds the waiters of a driver by key. The zero value is ready, with no
// hooks; it is safe for concurrent use. Notify costs one atomic load while nobody
// waits.
type Registry struct {
	Hooks Hooks

	n      atomic.Int64 // registered waiters; Notify skips the lock at 0
	mu     sync.Mutex
	keys   map[string]*entry
	closed bool
}

type entry struct {
	armed   chan struct{}
	waiters map[*Waiter]struct{}
}

// Waiter is one registered wait.
type Waiter struct {
	// Data is the driver's own, set before Add returns (the file driver keeps the file
	// as it was when the wait began).
	Data  any
	key   string
	ch    chan struct{}
	armed chan struct{}
	stop  func() bool // unregisters the ctx callback
}

// C is closed when the waiter is notified, when its ctx ends, or at Close.
func (w *Waiter) C() <-chan struct{} { return w.ch }

// Armed is closed once the waiter's key is armed (see [Hooks.Arm]).
func (w *Waiter) Armed() <-chan struct{} { return w.armed }

// Key is the key the waiter waits for.
func (w *Waiter) Key() string { return w.key }

// Watch registers a waiter for key and returns its channel: the shape of a driver's
// Watch.
func (r *Registry) Watch(ctx context.Context, key string) (<-chan struct{}, error) {
	w, err := r.Add(ctx, key, nil)
	if err != nil {
		return nil, err
	}
	return w.C(), nil
}

// Add registers a waiter for key, with data, until it is notified or ctx ends.
func (r *Registry) Add(ctx context.Context, key string, data any) (*Waiter, error) {
	w := &Waiter{Data: data, key: key, ch: make(chan struct{})}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, ErrClosed
	}
	e := r.keys[key]
	if e == nil {
		e = &entry{armed: make(chan struct{}), waiters: make(map[*Waiter]struct{})}
		if !r.Hooks.Arm {
			close(e.armed)
		}
		if r.Hooks.First != nil {
			if err := r.Hooks.First(key); err != nil {
				return nil, err
			}
		}
		if r.keys == nil {
			r.keys = make(map[string]*entry)
		}
		r.keys[key] = e
	}
	e.waiters[w] = struct{}{}
	w.armed = e.armed
	if r.n.Add(1) == 1 && r.Hooks.Active != nil {
		r.Hooks.Active(true)
	}
	// Under r.mu: a ctx that is already done runs the callback in a goroutine of its
	// own, which waits for the lock.
	w.stop = context.AfterFunc(ctx, func() { r.Fire(w) })
	return w, nil
}

// Fire closes w's channel and forgets it; a no-op after the first time.
func (r *Registry) Fire(w *Waiter) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.fire(w)
}

// fire is Fire with r.mu held.
func (r *Registry) fire(w *Waiter) {
	e := r.keys[w.key]
	if e == nil {
		return
	}
	if _, ok := e.waiters[w]; !ok {
		return
	}
	delete(e.waiters, w)
	close(w.ch)
	if len(e.waiters) == 0 {
		delete(r.keys, w.key)
		if !r.closed && r.Hooks.Last != nil {
			r.Hooks.Last(w.key)
		}
	}
	if r.n.Add(-1) == 0 && !r.closed && r.Hooks.Active != nil {
		r.Hooks.Active(false)
	}
	w.stop() // does not wait for a callback that has started
}

// Notify wakes every waiter of the keys.
func (r *Registry) Notify(keys ...string) {
	if r.n.Load() == 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, k := range keys {
		if e := r.keys[k]; e != nil {
			r.fireAll(e)
		}
	}
}

// NotifyIf wakes every waiter of a key for which match is true (a namespace delete, a
// flush); NotifyIf(nil) wakes every waiter (the events were lost).
func (r *Registry) NotifyIf(match func(key string) bool) {
	if r.n.Load() == 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for k, e := range r.keys {
		if match == nil || match(k) {
			r.fireAll(e)
		}
	}
}

func (r *Registry) fireAll(e *entry) {
	for w := range e.waiters {
		r.fire(w)
	}
}

// Arm closes the Armed channel of key's waiters.
func (r *Registry) Arm(key string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if e := r.keys[key]; e != nil {
		select {
		case <-e.armed:
		default:
			close(e.armed)
		}
	}
}

// Each calls fn with every waiter, under the registry's lock: fn must be quick and must
// not call the registry.
func (r *Registry) Each(fn func(w *Waiter)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range r.keys {
		for w := range e.waiters {
			fn(w)
		}
	}
}

// Close wakes every waiter and refuses new ones. It reports whether this call closed
// the registry.
func (r *Registry) Close() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return false
	}
	r.closed = true
	for _, e := range r.keys {
		r.fireAll(e)
	}
	return true
}
