package cache

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/cachekit/cache/driver"
)

// ReleaseTimeout bounds the release of a lock. The release runs on a context detached
// from the caller's cancellation, so that a cancelled request does not leave its lock
// held for the whole TTL, but it must not hang either.
const ReleaseTimeout = 5 * time.Second

// LockOptions are the options of [LockWith].
type LockOptions struct {
	// TTL is how long the lock lives if it is not released: the safety net when the
	// process dies inside fn. Required: a TTL <= 0 is ErrInvalidTTL and fn never runs.
	// Pick it longer than the work: once it elapses another caller can take the lock
	// while fn still runs.
	TTL time.Duration
	// Owner labels the holder, for people debugging stuck locks: the lock key holds a
	// string that starts with Owner, readable with Get. Default: "pid.<pid>".
	Owner string
	// Driver routes the whole operation (acquire and release) to the named driver;
	// c's current driver is unchanged.
	Driver string
}

// LockOutcome is the result of [Lock] and [LockWith]. Value is set only when Acquired.
type LockOutcome[T any] struct {
	// Acquired reports whether this call took the lock and ran fn.
	Acquired bool
	// Value is what fn returned.
	Value T
}

var defaultOwner = "pid." + strconv.Itoa(os.Getpid())

// Lock takes the lock key for ttl, runs fn, and releases the lock, even when fn returns
// an error or panics (the panic goes on after the release).
//
// If another holder has the lock, fn does not run and Lock returns Acquired == false with
// a nil error. A driver failure is an error, never a silent Acquired == false. The lock
// is not re-entrant: a nested Lock of the same key inside fn gets Acquired == false.
//
// The release removes only this holder's lock: each acquisition stores a unique token,
// and the release deletes the key only while it still holds that token, so if the TTL
// ran out and another holder took the key, its lock stays. The release runs on a context
// detached from ctx's cancellation, bounded by [ReleaseTimeout].
//
// Across which callers the lock excludes depends on the driver: every process sharing a
// Redis, every process on one host for the file driver, one process for the in-process
// drivers. The null driver always acquires. A driver that cannot create-if-absent and
// compare-and-delete atomically makes Lock return an error matching [ErrUnsupported].
func Lock[T any](ctx context.Context, c *Cache, key string, ttl time.Duration, fn func(context.Context) (T, error)) (LockOutcome[T], error) {
	return LockWith(ctx, c, key, LockOptions{TTL: ttl}, fn)
}

// LockWith is [Lock] with options: an owner label and a per-call driver.
func LockWith[T any](ctx context.Context, c *Cache, key string, o LockOptions, fn func(context.Context) (T, error)) (out LockOutcome[T], err error) {
	if o.TTL <= 0 {
		return out, opError("Lock", key, fmt.Errorf("%w: a lock needs a TTL > 0, got %v", ErrInvalidTTL, o.TTL))
	}
	d, k, err := c.prep(ctx, o.Driver, key)
	if err != nil {
		return out, opError("Lock", key, err)
	}
	if d.cond == nil || d.cad == nil {
		return out, unsupported(d, "Lock")
	}
	if err := ctx.Err(); err != nil { // a caller that has gone away takes no lock
		return out, opError("Lock", key, context.Cause(ctx))
	}
	owner := o.Owner
	if owner == "" {
		owner = defaultOwner
	}
	token, err := d.encode(owner + "#" + rand.Text())
	if err != nil {
		return out, opError("Lock", key, err)
	}
	acquired, err := d.cond.SetIf(ctx, driver.Entry{Key: k, Value: token, TTL: o.TTL, NoSlide: true}, driver.IfAbsent)
	if err != nil {
		return out, opError("Lock", key, err)
	}
	if !acquired {
		return out, nil
	}
	out.Acquired = true
	defer func() {
		// Runs on return and on panic; a panic goes on after the release.
		if rerr := release(ctx, d, k, token); rerr != nil {
			err = errors.Join(err, opError("Lock: release", key, rerr))
		}
	}()
	out.Value, err = fn(ctx)
	return out, err
}

// release deletes the lock if it still holds token.
func release(ctx context.Context, d *namedDriver, key string, token any) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ReleaseTimeout)
	defer cancel()
	_, err := d.cad.CompareAndDelete(ctx, key, token)
	return err
}
