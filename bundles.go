package cache

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cachekit/cache/driver"
)

// bundles returns d's [driver.Atomic] and [driver.KeySpace], or, for a bundle d lacks,
// one whose every method fails with an error that matches errors.ErrUnsupported: the
// operations built on a bundle then need no check of their own.
func bundles(d driver.Driver) (driver.Atomic, driver.KeySpace) {
	a, ok := d.(driver.Atomic)
	if !ok {
		a = noAtomic{lacks(d, "driver.Atomic")}
	}
	k, ok := d.(driver.KeySpace)
	if !ok {
		k = noKeySpace{lacks(d, "driver.KeySpace")}
	}
	return a, k
}

// lacks is the error of every method of a bundle that d does not implement.
func lacks(d driver.Driver, bundle string) error {
	return fmt.Errorf("%T does not implement %s: %w", d, bundle, errors.ErrUnsupported)
}

// noAtomic stands for the [driver.Atomic] of a driver without one.
type noAtomic struct{ err error }

func (n noAtomic) SetIf(context.Context, driver.Entry, driver.Condition) (bool, error) {
	return false, n.err
}
func (n noAtomic) CompareAndDelete(context.Context, string, any) (bool, error) {
	return false, n.err
}
func (n noAtomic) CompareAndSwap(context.Context, any, driver.Entry) (bool, error) {
	return false, n.err
}
func (n noAtomic) Extend(context.Context, string, any, time.Duration) (bool, error) {
	return false, n.err
}
func (n noAtomic) CreateFenced(context.Context, driver.Entry) (int64, bool, error) {
	return 0, false, n.err
}
func (n noAtomic) Increment(context.Context, string, int64, time.Duration) (int64, error) {
	return 0, n.err
}
func (n noAtomic) Pull(context.Context, string) (any, bool, error) { return nil, false, n.err }
func (n noAtomic) Watch(context.Context, string) (<-chan struct{}, error) {
	return nil, n.err
}

// noKeySpace stands for the [driver.KeySpace] of a driver without one.
type noKeySpace struct{ err error }

func (n noKeySpace) DeleteNamespace(context.Context, string) error             { return n.err }
func (n noKeySpace) Flush(context.Context) error                               { return n.err }
func (n noKeySpace) Scan(context.Context, string, func(key string) bool) error { return n.err }

// hasAtomic reports whether d implements [driver.Atomic]: only for the checks that must
// fail before anything is written.
func (d *namedDriver) hasAtomic() bool {
	_, none := d.atomic.(noAtomic)
	return !none
}
