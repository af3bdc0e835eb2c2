package driver

import (
	"sync"
	"sync/atomic"
)

// ExpiryNotifier is implemented by drivers that can tell when they drop an entry because
// its TTL passed: when a read finds it expired, or when a sweep or the store's own
// maintenance removes it. The manager (package cache) calls OnExpire once per cache
// that registers the driver, and turns each call of fn into an "expired" event. Absent:
// expiry is not reported.
//
// fn is called with the key as the driver stores it (the final key, prefix included),
// at most once per expired entry that the driver drops (an entry that expires and is
// then overwritten before the driver looks at it may go unreported), from whatever
// goroutine found it, possibly while the driver holds a lock: fn must be quick and must
// not call the driver. After Close the driver calls no fn.
type ExpiryNotifier interface {
	// OnExpire adds fn to the functions called for each expired entry.
	OnExpire(fn func(key string))
}

// ExpiryHooks is the list of functions an [ExpiryNotifier] keeps, ready to embed in a
// driver. Its zero value is empty and ready to use; it is safe for concurrent use.
type ExpiryHooks struct {
	mu  sync.Mutex
	fns atomic.Pointer[[]func(string)]
}

// OnExpire adds fn.
func (h *ExpiryHooks) OnExpire(fn func(key string)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var fns []func(string)
	if p := h.fns.Load(); p != nil {
		fns = append(fns, *p...)
	}
	fns = append(fns, fn)
	h.fns.Store(&fns)
}

// Active reports whether any function was added: a driver may skip the work of finding
// an expired entry's key when none was.
func (h *ExpiryHooks) Active() bool { return h.fns.Load() != nil }

// Expired calls every function with key.
func (h *ExpiryHooks) Expired(key string) {
	if p := h.fns.Load(); p != nil {
		for _, fn := range *p {
			fn(key)
		}
	}
}
