// Package nullcache is the null driver: it stores nothing.
//
// Every Get misses, so Remember always runs its function. Every create succeeds, so
// cache.Lock always acquires and fn always runs, with no coordination at all: use it in
// tests and in environments where caching and locking are turned off, like
// slog.DiscardHandler.
package nullcache

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/cachekit/cache/driver"
)

// Options configure a [Driver]. There are none yet; the type keeps New's shape the same
// as every driver's.
type Options struct{}

// Driver stores nothing. Its methods are safe for concurrent use.
type Driver struct {
	closed atomic.Bool
	fence  atomic.Int64
}

var (
	_ driver.Driver   = (*Driver)(nil)
	_ driver.Atomic   = (*Driver)(nil)
	_ driver.KeySpace = (*Driver)(nil)
)

// New returns a null driver.
func New(Options) (*Driver, error) { return &Driver{}, nil }

var errClosed = fmt.Errorf("nullcache: %w", driver.ErrClosed)

func (d *Driver) check() error {
	if d.closed.Load() {
		return errClosed
	}
	return nil
}

// Get always misses.
func (d *Driver) Get(context.Context, string) (any, bool, error) { return nil, false, d.check() }

// Set discards the entry.
func (d *Driver) Set(context.Context, driver.Entry) error { return d.check() }

// SetIf reports a write for IfAbsent (so locks always acquire) and none for IfPresent
// (nothing is ever present).
func (d *Driver) SetIf(_ context.Context, _ driver.Entry, cond driver.Condition) (bool, error) {
	return cond == driver.IfAbsent, d.check()
}

// CompareAndDelete reports a delete, as Set reports a write: a lock on the null driver
// is always released.
func (d *Driver) CompareAndDelete(context.Context, string, any) (bool, error) {
	return true, d.check()
}

// Increment returns delta: the missing key counts as 0.
func (d *Driver) Increment(_ context.Context, _ string, delta int64, _ time.Duration) (int64, error) {
	return delta, d.check()
}

// Pull always misses.
func (d *Driver) Pull(context.Context, string) (any, bool, error) { return nil, false, d.check() }

// Delete does nothing.
func (d *Driver) Delete(context.Context, ...string) error { return d.check() }

// DeleteNamespace does nothing.
func (d *Driver) DeleteNamespace(context.Context, string) error { return d.check() }

// Flush does nothing.
func (d *Driver) Flush(context.Context) error { return d.check() }

// Extend reports success: a lock on the null driver is never lost.
func (d *Driver) Extend(context.Context, string, any, time.Duration) (bool, error) {
	return true, d.check()
}

// CompareAndSwap reports a write, and discards it like Set.
func (d *Driver) CompareAndSwap(context.Context, any, driver.Entry) (bool, error) {
	return true, d.check()
}

// CreateFenced always creates, with a number that grows with every call.
func (d *Driver) CreateFenced(context.Context, driver.Entry) (int64, bool, error) {
	if err := d.check(); err != nil {
		return 0, false, err
	}
	return d.fence.Add(1), true, nil
}

// Watch returns a channel closed when ctx ends: nothing is ever deleted.
func (d *Driver) Watch(ctx context.Context, _ string) (<-chan struct{}, error) {
	if err := d.check(); err != nil {
		return nil, err
	}
	return ctx.Done(), nil
}

// Scan finds nothing.
func (d *Driver) Scan(context.Context, string, func(string) bool) error { return d.check() }

// Close marks the driver closed.
func (d *Driver) Close() error {
	d.closed.Store(true)
	return nil
}
