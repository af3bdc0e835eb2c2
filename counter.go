package cache

import (
	"context"
	"fmt"
	"math"
)

// Increment adds delta to the integer under key, atomically, and returns the new value.
// A missing key counts as 0 and is created with the driver's default TTL; an existing key
// keeps its remaining TTL. A key holding something other than an integer is an error
// matching [ErrNotInteger] and is left as it was. A driver without atomic counters returns
// an error matching [ErrUnsupported].
func (c *Cache) Increment(ctx context.Context, key string, delta int64) (int64, error) {
	return c.add(ctx, opIncrement, key, delta)
}

// Decrement subtracts delta from the integer under key, atomically, as [Cache.Increment]
// adds. It does not stop at zero.
func (c *Cache) Decrement(ctx context.Context, key string, delta int64) (int64, error) {
	if delta == math.MinInt64 {
		return 0, opError(opDecrement, key, fmt.Errorf("%w: delta %d cannot be negated", ErrNotInteger, delta))
	}
	return c.add(ctx, opDecrement, key, -delta)
}

func (c *Cache) add(ctx context.Context, op operation, key string, delta int64) (int64, error) {
	start := c.m.sampleStart()
	d, k, err := c.prep(ctx, "", key)
	if err != nil {
		return 0, d.fail(op, key, err)
	}
	n, err := d.atomic.Increment(ctx, k, delta, d.defTTL)
	c.done(op, d, key, EventSet, err, start)
	if err != nil {
		return 0, d.fail(op, key, err)
	}
	return n, nil
}
