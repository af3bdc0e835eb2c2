package cache

import (
	"context"
	"time"
)

// List is a list of values stored under one key: see [NewList]. Its methods are safe
// for concurrent use, and each is one atomic [Modify] of the key: atomic across processes
// on Redis and the file driver, within the process on the in-process drivers. The list is
// stored as one value (a JSON array on byte drivers), so each operation costs O(length):
// keep lists short (recent events, a capped log).
type List[T any] struct {
	c   *Cache
	key string
	o   ModifyOptions
}

// NewList returns the list under key. A new list gets ttl (0: the driver's default); every
// change keeps the remaining TTL. A list that becomes empty is deleted.
func NewList[T any](c *Cache, key string, ttl time.Duration) *List[T] {
	return &List[T]{c: c, key: key, o: ModifyOptions{MaxAttempts: 100, NewTTL: ttl}}
}

func (l *List[T]) modify(ctx context.Context, fn func([]T) ([]T, error)) ([]T, error) {
	return ModifyWith(ctx, l.c, l.key, l.o, func(cur []T, _ bool) ([]T, error) {
		next, err := fn(cur)
		if err == nil && len(next) == 0 {
			return nil, DeleteKey
		}
		return next, err
	})
}

// Push appends items and returns the new length.
func (l *List[T]) Push(ctx context.Context, items ...T) (int, error) {
	out, err := l.modify(ctx, func(cur []T) ([]T, error) { return append(cur, items...), nil })
	return len(out), err
}

// Unshift prepends items (in their order) and returns the new length.
func (l *List[T]) Unshift(ctx context.Context, items ...T) (int, error) {
	out, err := l.modify(ctx, func(cur []T) ([]T, error) {
		return append(append(make([]T, 0, len(items)+len(cur)), items...), cur...), nil
	})
	return len(out), err
}

// Pop removes and returns the last item; ok is false on an empty list.
func (l *List[T]) Pop(ctx context.Context) (v T, ok bool, err error) {
	_, err = l.modify(ctx, func(cur []T) ([]T, error) {
		if len(cur) == 0 {
			ok = false
			return cur, nil
		}
		v, ok = cur[len(cur)-1], true
		return cur[:len(cur)-1], nil
	})
	return v, ok, err
}

// Shift removes and returns the first item; ok is false on an empty list.
func (l *List[T]) Shift(ctx context.Context) (v T, ok bool, err error) {
	_, err = l.modify(ctx, func(cur []T) ([]T, error) {
		if len(cur) == 0 {
			ok = false
			return cur, nil
		}
		v, ok = cur[0], true
		return cur[1:], nil
	})
	return v, ok, err
}

// All returns the whole list (nil when empty).
func (l *List[T]) All(ctx context.Context) ([]T, error) {
	v, _, err := GetAs[[]T](ctx, l.c, l.key)
	return v, err
}

// Slice returns items [start, stop], inclusive, with negative indexes counting from the
// end, as Redis LRANGE: Slice(ctx, 0, -1) is the whole list, Slice(ctx, -3, -1) the last 3.
func (l *List[T]) Slice(ctx context.Context, start, stop int) ([]T, error) {
	all, err := l.All(ctx)
	if err != nil {
		return nil, err
	}
	i, j := span(len(all), start, stop)
	return all[i:j], nil
}

// Len returns the list's length.
func (l *List[T]) Len(ctx context.Context) (int, error) {
	all, err := l.All(ctx)
	return len(all), err
}

// Trim keeps items [start, stop], inclusive, negative indexes from the end, as Redis
// LTRIM: Trim(ctx, -100, -1) keeps the last 100.
func (l *List[T]) Trim(ctx context.Context, start, stop int) error {
	_, err := l.modify(ctx, func(cur []T) ([]T, error) {
		i, j := span(len(cur), start, stop)
		return cur[i:j], nil
	})
	return err
}

// Clear deletes the list.
func (l *List[T]) Clear(ctx context.Context) error {
	return l.c.Remove(ctx, l.key)
}

// span turns LRANGE indexes into a Go slice range of a list of n items.
func span(n, start, stop int) (int, int) {
	if start < 0 {
		start += n
	}
	if stop < 0 {
		stop += n
	}
	start = max(start, 0)
	stop = min(stop, n-1)
	if start > stop {
		return 0, 0
	}
	return start, stop + 1
}
