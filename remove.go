package cache

import (
	"context"
)

// Remove deletes the keys. Missing keys are not an error. The marks the cache keeps
// beside a key (see [Cache.RemoveMarks]) stay.
func (c *Cache) Remove(ctx context.Context, keys ...string) error {
	return c.remove(ctx, opRemove, "", keys, true)
}

// RemoveMarks removes the records the cache keeps beside each key: the negative-caching
// mark of [RememberOptions.NegativeTTL] and the freshness mark of [SWR]. The values stay.
// Call it when the thing a negative mark says does not exist has been created, or to
// make the next SWR read refresh a value. Missing marks are not an error. The marks'
// names hold the reserved "|", which every keyed call refuses: this is the way to
// remove them by key. It emits no removed events (errors only).
func (c *Cache) RemoveMarks(ctx context.Context, keys ...string) error {
	return c.remove(ctx, opRemoveMarks, "", keys, false, recNone, recFresh)
}

// remove deletes the keys (with withKey) and the named records of each, on the driver
// override picks, in one driver call. Removed events are for the keys themselves.
func (c *Cache) remove(ctx context.Context, op operation, override string, keys []string, withKey bool, records ...string) error {
	if len(keys) == 0 {
		return nil
	}
	d, err := c.driverFor(override)
	if err != nil {
		return d.fail(op, "", err)
	}
	n := len(records)
	if withKey {
		n++
	}
	final := make([]string, 0, n*len(keys))
	for _, key := range keys {
		k, err := c.finalKey(ctx, key)
		if err != nil {
			return d.fail(op, key, err)
		}
		if withKey {
			final = append(final, k)
		}
		for _, r := range records {
			final = append(final, recordKey(k, r))
		}
	}
	err = d.d.Delete(ctx, final...)
	if withKey && c.m.wants(EventRemoved) || err != nil && c.m.wants(EventError) {
		for _, key := range keys {
			c.done(op, d, key, EventRemoved, err, 0)
		}
	}
	return d.fail(op, "", err)
}

// RemoveNamespace deletes the key ns and every key under "ns.", and never a key such as
// "nsX". ns is scoped like any key (global prefix, then the view's namespace).
func (c *Cache) RemoveNamespace(ctx context.Context, ns string) error {
	d, k, err := c.prep(ctx, "", trimDots(ns))
	if err != nil {
		return d.fail(opRemoveNamespace, ns, err)
	}
	err = d.keys.DeleteNamespace(ctx, k)
	c.done(opRemoveNamespace, d, ns, EventFlushed, err, 0)
	return d.fail(opRemoveNamespace, ns, err)
}

// Flush deletes what this cache can see. With a global prefix or on a [Cache.Namespace]
// view, that is only the keys under the prefix and namespace; otherwise it is everything
// the current driver holds.
func (c *Cache) Flush(ctx context.Context) error {
	d, err := c.driverFor("")
	if err != nil {
		return d.fail(opFlush, "", err)
	}
	scope, err := c.scope(ctx)
	if err != nil {
		return d.fail(opFlush, "", err)
	}
	if scope != "" {
		err := d.keys.DeleteNamespace(ctx, scope)
		c.done(opFlush, d, "", EventFlushed, err, 0)
		return d.fail(opFlush, scope, err)
	}
	err = d.keys.Flush(ctx)
	c.done(opFlush, d, "", EventFlushed, err, 0)
	return d.fail(opFlush, "", err)
}
