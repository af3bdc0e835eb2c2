package cache

import (
	"context"
	"fmt"
	"reflect"
	"time"

	"github.com/cachekit/cache/internal/memokey"
)

// Memo is a memoized function: see [Cached].
type Memo[A, T any] struct {
	c      *Cache
	prefix string
	o      RememberOptions
	fn     func(context.Context, A) (T, error)
	asJSON bool // A is an interface type: every argument is keyed by its JSON
}

// Cached memoizes fn: m.Get(ctx, a) is Remember(prefix + "." + key(a), ttl, fn(a)), with
// Remember's one-load-per-key promise. The text of an argument is the argument itself for
// strings, the decimal text for numbers and booleans, and JSON for anything else and for
// every argument when A is an interface type (map keys sorted, struct fields in
// declaration order, unexported fields left out: two arguments that differ only there
// share a key). The key is that text, except that a text starting with "~" gets another
// "~" in front, and a text longer than 200 bytes, or holding the reserved "|", is
// replaced by "~sha256:" and its SHA-256 in hex: distinct texts never share a key.
func Cached[A, T any](c *Cache, prefix string, ttl time.Duration, fn func(context.Context, A) (T, error)) *Memo[A, T] {
	return CachedWith(c, prefix, RememberOptions{TTL: ttl}, fn)
}

// CachedWith is [Cached] with Remember's options: a per-call driver (used by Invalidate
// too), Distributed, NegativeTTL.
func CachedWith[A, T any](c *Cache, prefix string, o RememberOptions, fn func(context.Context, A) (T, error)) *Memo[A, T] {
	return &Memo[A, T]{c: c, prefix: trimDots(prefix), o: o, fn: fn, asJSON: reflect.TypeFor[A]().Kind() == reflect.Interface}
}

// Get returns fn(a), from the cache when it is there.
func (m *Memo[A, T]) Get(ctx context.Context, a A) (T, error) {
	key, err := m.Key(a)
	if err != nil {
		var zero T
		return zero, err
	}
	return RememberWith(ctx, m.c, key, m.o, func(ctx context.Context) (T, error) { return m.fn(ctx, a) })
}

// Invalidate forgets the result for a, and its negative-caching mark, on the memo's driver.
func (m *Memo[A, T]) Invalidate(ctx context.Context, a A) error {
	key, err := m.Key(a)
	if err != nil {
		return err
	}
	return m.c.remove(ctx, opInvalidate, m.o.Driver, []string{key}, true, recNone)
}

// Key returns the cache key of a (before the global prefix).
func (m *Memo[A, T]) Key(a A) (string, error) {
	s, err := memokey.Of(a, m.asJSON, reserved)
	if err != nil {
		return "", opError(opCached, m.prefix, fmt.Errorf("%w: the argument %T has no key: %w", ErrInvalidKey, a, err))
	}
	return join(m.prefix, s), nil
}
