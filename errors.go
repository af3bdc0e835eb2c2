package cache

import (
	"errors"
	"fmt"

	"github.com/cachekit/cache/driver"
)

// Sentinel errors. Match them with errors.Is: the errors the cache returns wrap them
// with the operation, the driver and the key.
var (
	// ErrInvalidTTL: a negative TTL, both TTL and ExpiresAt, an ExpiresAt in the past, or
	// a lock TTL that is not positive.
	ErrInvalidTTL = errors.New("cache: invalid ttl")
	// ErrUnknownDriver: a driver name that is not in Config.Drivers, given to Use, Driver,
	// or an options Driver field.
	ErrUnknownDriver = errors.New("cache: unknown driver")
	// ErrClosed: the cache, or its driver, was closed. It is driver.ErrClosed, so a
	// driver's own closed error matches it too.
	ErrClosed = driver.ErrClosed
	// ErrInvalidKey: an empty key or namespace, a key, namespace or tag the cache cannot
	// use (a key or namespace holding the reserved "|", an empty tag), or a prefix from
	// Config.PrefixFunc that breaks the prefix rules (that error matches ErrInvalidConfig
	// too).
	ErrInvalidKey = errors.New("cache: invalid key")
	// ErrInvalidConfig: a Config that cannot make a cache (no drivers, a nil driver, a
	// Default that is not among the drivers, a Prefix that holds "." or "|").
	ErrInvalidConfig = errors.New("cache: invalid config")
	// ErrNotInteger: Increment or Decrement on a key that holds something other than an
	// integer. It is driver.ErrNotInteger.
	ErrNotInteger = driver.ErrNotInteger
	// ErrUnsupported is errors.ErrUnsupported. A driver that cannot do an operation safely
	// (atomically, say) makes the cache return an error that matches it; the cache never
	// emulates an atomic operation with several non-atomic ones.
	ErrUnsupported = errors.ErrUnsupported
)

// unsupported is the error for a capability that the driver lacks.
func unsupported(d *namedDriver, op string) error {
	return fmt.Errorf("cache: %s: driver %q (%T) cannot do it atomically: %w", op, d.name, d.d, errors.ErrUnsupported)
}

// opError wraps err with the operation and the key, keeping it matchable with errors.Is.
func opError(op, key string, err error) error {
	if key == "" {
		return fmt.Errorf("cache: %s: %w", op, err)
	}
	return fmt.Errorf("cache: %s %q: %w", op, key, err)
}
