package cache

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

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
	// use (a key, namespace or tag holding the reserved "|", an empty tag), or a prefix from
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

// Error is the error of a cache operation: what was done, on which key and driver, and
// why. Every error the cache returns for an operation is an *Error (fn's own errors
// aside, which Lock, Remember and the like return as they are). Match its cause with
// errors.Is and errors.As; read the fields with errors.As.
//
// Its message is one line that names the operation, the key and the driver once, with
// one "cache:" prefix: `cache: Lock "lock.import" (driver "redis"): lock lost: its lease
// ended while fn was running`.
type Error struct {
	// Op is the operation: "Get", "Set", "Lock", "Remember", ...
	Op string
	// Key is the key as the caller gave it; "" for an operation without one (Flush).
	Key string
	// Driver is the name of the driver the operation ran on; "" when it failed before one
	// was chosen.
	Driver string
	// Err is the cause.
	Err error
}

// Error returns the one-line message.
func (e *Error) Error() string {
	s := "cache: " + e.Op
	if e.Key != "" {
		s += " " + strconv.Quote(e.Key)
	}
	if e.Driver != "" {
		s += " (driver " + strconv.Quote(e.Driver) + ")"
	}
	if e.Err != nil {
		s += ": " + causeText(e.Err)
	}
	return s
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// causeText is err's message on one line, without the "cache: " prefixes of the errors
// it wraps: the *Error around it says "cache:" once.
func causeText(err error) string {
	s := err.Error()
	s = strings.ReplaceAll(s, "\n", "; ")
	s = strings.TrimPrefix(s, "cache: ")
	s = strings.ReplaceAll(s, ": cache: ", ": ")
	return strings.ReplaceAll(s, "; cache: ", "; ")
}

// cannotDo is the error of a step that needs a capability the driver lacks, returned to
// an operation that wraps it; feature, if not empty, names what needs it. The bundles'
// stand-ins (see bundles) give the error of a missing bundle.
func cannotDo(d *namedDriver, feature string) error {
	if feature != "" {
		return fmt.Errorf("%s: %T cannot do it atomically: %w", feature, d.d, errors.ErrUnsupported)
	}
	return fmt.Errorf("%T cannot do it atomically: %w", d.d, errors.ErrUnsupported)
}

// opError wraps err with the operation and the key, keeping it matchable with errors.Is.
func opError(op operation, key string, err error) error {
	return &Error{Op: op.String(), Key: key, Err: err}
}

// fail wraps err with the operation, the key and d's name (none for a nil d: the
// operation failed before a driver was chosen); nil stays nil.
func (d *namedDriver) fail(op operation, key string, err error) error {
	if err == nil {
		return nil
	}
	e := &Error{Op: op.String(), Key: key, Err: err}
	if d != nil {
		e.Driver = d.name
	}
	return e
}
