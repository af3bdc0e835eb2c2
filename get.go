package cache

import (
	"context"

	"github.com/cachekit/cache/internal/conv"
)

// GetAs reads the value under key as a T: [Cache.Get] without a destination pointer.
// found is false on a miss. On an in-process driver a hit whose stored type is T costs no
// allocation, where Get's dst (passed as any) makes the caller's variable escape to the
// heap; other values convert as Get converts them.
func GetAs[T any](ctx context.Context, c *Cache, key string) (v T, found bool, err error) {
	start := c.m.sampleStart()
	d, scope, err := c.prepScope(ctx, "", key)
	if err != nil {
		return v, false, d.fail(opGet, key, err)
	}
	r, err := d.readAt(ctx, scope, key)
	if kind := eventKind(r.found, err); c.m.wants(kind) {
		c.m.end(opGet, d, key, kind, err, start)
	}
	if err != nil || !r.found {
		if err != nil && !c.readFailsOpen(ctx, opGet, d, key, err) {
			err = d.fail(opGet, key, err)
		} else {
			err = nil
		}
		return v, false, err
	}
	if v, err = valueAs[T](d, r); err != nil {
		return v, true, d.fail(opGet, key, err)
	}
	return v, true, nil
}

// Get reads the value under key into dst, a non-nil pointer. On a miss it returns
// found == false and a nil error, and leaves dst alone. A stored zero value is a hit.
// A dst that is not a non-nil pointer (nil, a nil *T, a T) is an error, hit or miss,
// and nothing is written.
//
// In-process drivers hand back the Go value that Set stored: it is assigned to *dst
// directly when its type fits, and converted through JSON otherwise (an int64 counter read
// into an int, say). Byte drivers decode with their codec.
func (c *Cache) Get(ctx context.Context, key string, dst any) (found bool, err error) {
	start := c.m.sampleStart()
	d, scope, err := c.prepScope(ctx, "", key)
	if err == nil {
		var r readResult
		if r, err = d.readAt(ctx, scope, key); err == nil && r.found {
			found = true
			err = d.decodeRead(r, dst) // checks dst, at no cost to a hit
		} else if err == nil {
			err = conv.Check(dst) // a miss writes nothing, but a bad dst is an error all the same
		} else if c.readFailsOpen(ctx, opGet, d, key, err) {
			c.done(opGet, d, key, 0, err, start)
			return false, nil
		}
	}
	if kind := eventKind(found, err); c.m.wants(kind) {
		c.m.end(opGet, d, key, kind, err, start)
	}
	if err != nil {
		return found, d.fail(opGet, key, err)
	}
	return found, nil
}

// Has reports whether key holds a live value. On a driver with sliding expiry it counts
// as a read and pushes the expiry back.
func (c *Cache) Has(ctx context.Context, key string) (bool, error) {
	start := c.m.sampleStart()
	d, k, err := c.prep(ctx, "", key)
	if err != nil {
		return false, d.fail(opHas, key, err)
	}
	_, found, err := d.d.Get(ctx, k)
	if kind := eventKind(found, err); c.m.wants(kind) {
		c.m.end(opHas, d, key, kind, err, start)
	}
	if err != nil {
		return false, d.fail(opHas, key, err)
	}
	return found, nil
}

// Pull reads the value under key into dst and deletes the key, in one atomic step: of
// many concurrent Pulls of one value, exactly one gets it. A driver without an atomic
// get-and-delete returns an error matching [ErrUnsupported]. dst must be a non-nil
// pointer, as for [Cache.Get]: any other dst is an error before anything is read or
// deleted.
func (c *Cache) Pull(ctx context.Context, key string, dst any) (found bool, err error) {
	start := c.m.sampleStart()
	d, k, err := c.prep(ctx, "", key)
	if err != nil {
		return false, d.fail(opPull, key, err)
	}
	if err := conv.Check(dst); err != nil {
		return false, d.fail(opPull, key, err)
	}
	v, found, err := d.atomic.Pull(ctx, k)
	c.done(opPull, d, key, hitOrMiss(found), err, start)
	if err != nil {
		return false, d.fail(opPull, key, err)
	}
	if !found {
		return false, nil
	}
	c.done(opPull, d, key, EventRemoved, nil, 0)
	if err := d.decode(v, dst); err != nil {
		return true, d.fail(opPull, key, err)
	}
	return true, nil
}

// Many reads keys and returns the hits by key; a missing key is absent from the map.
// Every value is read into a T as [Cache.Get] would.
func Many[T any](ctx context.Context, c *Cache, keys ...string) (map[string]T, error) {
	d, err := c.driverFor("")
	if err != nil {
		return nil, d.fail(opMany, "", err)
	}
	final := make([]string, len(keys))
	for i, key := range keys {
		if final[i], err = c.finalKey(ctx, key); err != nil {
			return nil, d.fail(opMany, key, err)
		}
	}
	vals, found, err := getMany(ctx, d, final)
	if err != nil && d.batch != nil {
		found = nil // the batch failed as a whole
	}
	out := make(map[string]T, len(keys))
	for i := range found { // with an error of the one-by-one reads, those before it
		c.done(opMany, d, keys[i], hitOrMiss(found[i]), nil, 0)
		if !found[i] {
			continue
		}
		var t T
		if err := d.decode(vals[i], &t); err != nil {
			return nil, d.fail(opMany, keys[i], err)
		}
		out[keys[i]] = t
	}
	if err != nil {
		key := "" // the batch's error
		if d.batch == nil {
			key = keys[len(found)]
		}
		c.done(opMany, d, key, 0, err, 0)
		return nil, d.fail(opMany, key, err)
	}
	return out, nil
}

// getMany reads keys in one call when the driver can, and one by one otherwise: then an
// error stops the reads, and vals and found hold those before it (len(found) is the
// index of the key that failed).
func getMany(ctx context.Context, d *namedDriver, keys []string) (vals []any, found []bool, err error) {
	if d.batch != nil {
		return d.batch.GetMany(ctx, keys)
	}
	vals, found = make([]any, len(keys)), make([]bool, len(keys))
	for i, k := range keys {
		v, ok, err := d.d.Get(ctx, k)
		if err != nil {
			return vals[:i], found[:i], err
		}
		vals[i], found[i] = v, ok
	}
	return vals, found, nil
}
