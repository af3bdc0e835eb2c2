package cache

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// List is a list of values stored under one key: see [NewList]. Its methods are safe
// for concurrent use and each is atomic: on a driver with native lists (one that
// implements driver.Lister) it is one list command, so it costs O(1) for Push and Pop;
// elsewhere the list is one value (a JSON array on a byte driver) changed with one
// [Modify], as atomic as Modify is on that driver, at O(length) per change. Every change
// keeps the key's remaining TTL; a list left empty is deleted. A native list is not a
// value that Get can read: use the List's methods.
type List[T any] struct {
	c   *Cache
	key string
	ttl time.Duration
	bad error // the ttl is negative: every call fails with it
}

// NewList returns the list under key. A new list gets ttl (0: the driver's default),
// capped as in [Cache.Set]. A negative ttl makes every call of the list fail with an
// error matching [ErrInvalidTTL], before the store is touched.
func NewList[T any](c *Cache, key string, ttl time.Duration) *List[T] {
	l := &List[T]{c: c, key: key, ttl: capTTL(ttl)}
	if ttl < 0 {
		l.bad = fmt.Errorf("%w: the list's TTL %v is negative", ErrInvalidTTL, ttl)
	}
	return l
}

// resolve returns the driver and final key of the list; the driver has native lists
// when its lister is set.
func (l *List[T]) resolve(ctx context.Context) (*namedDriver, string, error) {
	if l.bad != nil {
		return nil, "", opError(opList, l.key, l.bad)
	}
	d, k, err := l.c.prep(ctx, "", l.key)
	if err != nil {
		return nil, "", opError(opList, l.key, err)
	}
	return d, k, nil
}

func (l *List[T]) modify(ctx context.Context, fn func([]T) ([]T, error)) ([]T, error) {
	o := ModifyOptions{MaxAttempts: 100, NewTTL: l.ttl, op: opList}
	return ModifyWith(ctx, l.c, l.key, o, func(cur []T, _ bool) ([]T, error) {
		next, err := fn(cur)
		if err == nil && len(next) == 0 {
			return nil, DeleteKey
		}
		return next, err
	})
}

func (l *List[T]) push(ctx context.Context, front bool, items []T) (int, error) {
	if len(items) == 0 {
		return l.Len(ctx)
	}
	d, k, err := l.resolve(ctx)
	if err != nil {
		return 0, err
	}
	if d.lister != nil {
		vals := make([]any, len(items))
		order := items
		if front { // LPUSH a b c stores c b a: push in reverse to keep the items' order
			order = slices.Clone(items)
			slices.Reverse(order)
		}
		for i, it := range order {
			if vals[i], err = d.encode(it); err != nil {
				return 0, opError(opList, l.key, err)
			}
		}
		n, err := d.lister.ListPush(ctx, k, vals, front, d.orDefault(l.ttl))
		l.c.done(opList, d, l.key, EventSet, err, 0)
		if err != nil {
			return 0, opError(opList, l.key, err)
		}
		return int(n), nil
	}
	out, err := l.modify(ctx, func(cur []T) ([]T, error) {
		// Always a new slice: on in-process drivers cur is the stored one, which readers
		// may hold.
		if front {
			return slices.Concat(items, cur), nil
		}
		return slices.Concat(cur, items), nil
	})
	return len(out), err
}

// Push appends items and returns the new length.
func (l *List[T]) Push(ctx context.Context, items ...T) (int, error) {
	return l.push(ctx, false, items)
}

// Unshift prepends items (in their order) and returns the new length.
func (l *List[T]) Unshift(ctx context.Context, items ...T) (int, error) {
	return l.push(ctx, true, items)
}

func (l *List[T]) pop(ctx context.Context, front bool) (v T, ok bool, err error) {
	d, k, err := l.resolve(ctx)
	if err != nil {
		return v, false, err
	}
	if d.lister != nil {
		raw, found, err := d.lister.ListPop(ctx, k, front)
		if found || err != nil {
			// An item was taken: the list changed (a native list cannot say whether it
			// is now empty, and so deleted).
			l.c.done(opList, d, l.key, EventSet, err, 0)
		}
		if err != nil || !found {
			return v, false, d.fail(opList, l.key, err)
		}
		if err := d.decode(raw, &v); err != nil {
			return v, true, opError(opList, l.key, err)
		}
		return v, true, nil
	}
	_, err = l.modify(ctx, func(cur []T) ([]T, error) {
		if len(cur) == 0 {
			return cur, nil
		}
		ok = true
		if front {
			v = cur[0]
			return slices.Clone(cur[1:]), nil
		}
		v = cur[len(cur)-1]
		return slices.Clone(cur[:len(cur)-1]), nil
	})
	return v, ok, err
}

// Pop removes and returns the last item; ok is false on an empty list.
func (l *List[T]) Pop(ctx context.Context) (v T, ok bool, err error) { return l.pop(ctx, false) }

// Shift removes and returns the first item; ok is false on an empty list.
func (l *List[T]) Shift(ctx context.Context) (v T, ok bool, err error) { return l.pop(ctx, true) }

// Slice returns items [start, stop], inclusive, with negative indexes counting from the
// end, as Redis LRANGE: Slice(ctx, 0, -1) is the whole list, Slice(ctx, -3, -1) the last 3.
func (l *List[T]) Slice(ctx context.Context, start, stop int) ([]T, error) {
	d, k, err := l.resolve(ctx)
	if err != nil {
		return nil, err
	}
	if d.lister != nil {
		raws, err := d.lister.ListRange(ctx, k, int64(start), int64(stop))
		l.c.done(opList, d, l.key, hitOrMiss(len(raws) > 0), err, 0)
		if err != nil {
			return nil, opError(opList, l.key, err)
		}
		out := make([]T, len(raws))
		for i, raw := range raws {
			if err := d.decode(raw, &out[i]); err != nil {
				return nil, opError(opList, l.key, err)
			}
		}
		if len(out) == 0 {
			return nil, nil
		}
		return out, nil
	}
	all, err := l.read(ctx, d, k)
	if err != nil {
		return nil, err
	}
	i, j := span(len(all), start, stop)
	if i == j {
		return nil, nil
	}
	return slices.Clone(all[i:j]), nil // never the stored slice itself
}

// Len returns the list's length.
func (l *List[T]) Len(ctx context.Context) (int, error) {
	d, k, err := l.resolve(ctx)
	if err != nil {
		return 0, err
	}
	if d.lister != nil {
		n, err := d.lister.ListLen(ctx, k)
		l.c.done(opList, d, l.key, hitOrMiss(n > 0), err, 0)
		if err != nil {
			return 0, opError(opList, l.key, err)
		}
		return int(n), nil
	}
	all, err := l.read(ctx, d, k)
	return len(all), err
}

// read reads a list kept as one value: hit or miss.
func (l *List[T]) read(ctx context.Context, d *namedDriver, k string) ([]T, error) {
	raw, found, err := d.d.Get(ctx, k)
	var all []T
	if err == nil && found {
		err = d.decode(raw, &all)
	}
	l.c.done(opList, d, l.key, hitOrMiss(found), err, 0)
	if err != nil {
		return nil, d.fail(opList, l.key, err)
	}
	return all, nil
}

// Trim keeps items [start, stop], inclusive, negative indexes from the end, as Redis
// LTRIM: Trim(ctx, -100, -1) keeps the last 100.
func (l *List[T]) Trim(ctx context.Context, start, stop int) error {
	d, k, err := l.resolve(ctx)
	if err != nil {
		return err
	}
	if d.lister != nil {
		err := d.lister.ListTrim(ctx, k, int64(start), int64(stop))
		l.c.done(opList, d, l.key, EventSet, err, 0)
		return d.fail(opList, l.key, err)
	}
	_, err = l.modify(ctx, func(cur []T) ([]T, error) {
		i, j := span(len(cur), start, stop)
		return slices.Clone(cur[i:j]), nil
	})
	return err
}

// Clear deletes the list.
func (l *List[T]) Clear(ctx context.Context) error {
	if l.bad != nil {
		return opError(opList, l.key, l.bad)
	}
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
