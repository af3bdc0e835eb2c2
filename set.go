package cache

import (
	"context"
	"fmt"
	"time"

	"github.com/cachekit/cache/driver"
)

// OnConflict says what SetWith does when the key already holds a live value.
type OnConflict uint8

const (
	// Upsert always writes. It is the zero value.
	Upsert OnConflict = iota
	// Create writes only if the key is absent or expired, atomically: of many concurrent
	// Creates of one key, exactly one writes. It is the primitive the lock is built on.
	Create
	// Update writes only if the key is present and live, atomically.
	Update
)

// SetOptions are the options of [Cache.SetWith].
type SetOptions struct {
	// TTL is how long the value lives. 0: the driver's default TTL, or no expiry if the
	// driver has none. Negative: ErrInvalidTTL. A TTL longer than [driver.MaxTTL] (about
	// 100 years), up to math.MaxInt64, means practically forever: it is stored as MaxTTL.
	TTL time.Duration
	// ExpiresAt is an absolute expiry, instead of TTL. Setting both, or an ExpiresAt that
	// is not in the future, is ErrInvalidTTL. One further away than [driver.MaxTTL] is
	// stored as MaxTTL from now.
	ExpiresAt time.Time
	// OnConflict chooses Upsert (default), Create or Update. Create and Update need a
	// driver that can do them atomically; otherwise the error matches ErrUnsupported.
	OnConflict OnConflict
	// Driver routes this call to the named driver; c's current driver is unchanged.
	Driver string
	// Tags are attached to the entry, for tag invalidation ([Cache.InvalidateTags]),
	// on top of the tags of a [Cache.Tags] view.
	Tags []string
}

// SetResult is the result of [Cache.SetWith].
type SetResult struct {
	// Written reports whether this call wrote: always true for Upsert, false for a Create
	// on a live key or an Update on a missing one.
	Written bool
}

// Set stores v under key for ttl. ttl 0 means the driver's default TTL, or no expiry if
// it has none; a negative ttl is an error matching ErrInvalidTTL. A ttl longer than
// [driver.MaxTTL] (about 100 years), up to math.MaxInt64, is stored as MaxTTL: a value
// that practically never expires.
func (c *Cache) Set(ctx context.Context, key string, v any, ttl time.Duration) error {
	ttl, err := resolveTTL(ttl, time.Time{})
	if err != nil {
		return opError("Set", key, err)
	}
	d, k, err := c.prepTagged(ctx, "", key, nil)
	if err != nil {
		return d.fail("Set", key, err)
	}
	ttl = d.orDefault(ttl)
	start := c.m.sampleStart()
	_, err = d.write(ctx, driver.Entry{Key: k, Value: v, TTL: ttl}, Upsert)
	if err == nil {
		err = c.indexTags(ctx, d, k, ttl, nil)
	}
	if kind := orError(EventSet, err); c.m.wants(kind) {
		c.m.end("Set", d, key, kind, err, start)
	}
	return d.fail("Set", key, err)
}

// SetWith stores v under key with the options in o: a conditional write, an absolute
// expiry, a per-call driver, tags.
func (c *Cache) SetWith(ctx context.Context, key string, v any, o SetOptions) (SetResult, error) {
	ttl, err := resolveTTL(o.TTL, o.ExpiresAt)
	if err != nil {
		return SetResult{}, opError("SetWith", key, err)
	}
	if o.OnConflict > Update {
		return SetResult{}, opError("SetWith", key, fmt.Errorf("%w: unknown %v", ErrInvalidConfig, o.OnConflict))
	}
	d, k, err := c.prepTagged(ctx, o.Driver, key, o.Tags)
	if err != nil {
		return SetResult{}, d.fail("SetWith", key, err)
	}
	ttl = d.orDefault(ttl)
	written, err := d.write(ctx, driver.Entry{Key: k, Value: v, TTL: ttl, Tags: o.Tags}, o.OnConflict)
	if written || err != nil {
		c.done("SetWith", d, key, EventSet, err, 0)
	}
	if err != nil {
		return SetResult{}, d.fail("SetWith", key, err)
	}
	if written {
		if err := c.indexTags(ctx, d, k, ttl, o.Tags); err != nil {
			return SetResult{Written: true}, d.fail("SetWith", key, err)
		}
	}
	return SetResult{Written: written}, nil
}

// Forever stores v under key with no expiry, whatever the driver's default TTL.
func (c *Cache) Forever(ctx context.Context, key string, v any) error {
	d, k, err := c.prepTagged(ctx, "", key, nil)
	if err != nil {
		return d.fail("Forever", key, err)
	}
	_, err = d.write(ctx, driver.Entry{Key: k, Value: v}, Upsert)
	c.done("Forever", d, key, EventSet, err, 0)
	if err != nil {
		return d.fail("Forever", key, err)
	}
	if err := c.indexTags(ctx, d, k, 0, nil); err != nil {
		return d.fail("Forever", key, err)
	}
	return nil
}

// write encodes e.Value and writes it with the conflict mode. e.TTL is resolved; write
// caps it too, for the callers that resolve a TTL of their own.
func (d *namedDriver) write(ctx context.Context, e driver.Entry, mode OnConflict) (bool, error) {
	v, err := d.encode(e.Value)
	if err != nil {
		return false, err
	}
	e.Value = v
	e.TTL = capTTL(e.TTL)
	switch {
	case mode != Create && mode != Update:
		return true, d.d.Set(ctx, e)
	case mode == Update:
		return d.atomic.SetIf(ctx, e, driver.IfPresent)
	}
	return d.atomic.SetIf(ctx, e, driver.IfAbsent)
}

// capTTL saturates a TTL at [driver.MaxTTL]: every TTL the manager resolves for a driver
// or for the tag index goes through it, so that no driver or index computes now + ttl
// past the range of an int64 of Unix nanoseconds (a TTL of math.MaxInt64 would wrap into
// the past and expire at once). 0 (no expiry) and negative TTLs pass unchanged.
func capTTL(ttl time.Duration) time.Duration {
	return min(ttl, driver.MaxTTL)
}

// orDefault is ttl, or the driver's default TTL for 0.
func (d *namedDriver) orDefault(ttl time.Duration) time.Duration {
	if ttl == 0 {
		return d.defTTL
	}
	return ttl
}

// resolveTTL checks a TTL or an absolute expiry and returns the TTL (0: default), capped
// with capTTL.
func resolveTTL(ttl time.Duration, at time.Time) (time.Duration, error) {
	if ttl < 0 {
		return 0, fmt.Errorf("%w: %v is negative", ErrInvalidTTL, ttl)
	}
	if at.IsZero() {
		return capTTL(ttl), nil
	}
	if ttl != 0 {
		return 0, fmt.Errorf("%w: both TTL and ExpiresAt are set", ErrInvalidTTL)
	}
	ttl = time.Until(at) // saturates at math.MaxInt64 for a time centuries away
	if ttl <= 0 {
		return 0, fmt.Errorf("%w: ExpiresAt %v is not in the future", ErrInvalidTTL, at)
	}
	return capTTL(ttl), nil
}

// SetMany stores every entry of items for ttl (0: the driver's default), capped as in
// [Cache.Set]. The writes are not atomic as a group: on an error, some may have been
// written.
func (c *Cache) SetMany(ctx context.Context, items map[string]any, ttl time.Duration) error {
	ttl, err := resolveTTL(ttl, time.Time{})
	if err != nil {
		return opError("SetMany", "", err)
	}
	d, err := c.driverFor("")
	if err == nil {
		err = c.checkTags(d, nil)
	}
	if err != nil {
		return d.fail("SetMany", "", err)
	}
	ttl = d.orDefault(ttl)
	entries := make([]driver.Entry, 0, len(items))
	keys := make([]string, 0, len(items)) // the callers' keys, for the events
	for key, v := range items {
		k, err := c.finalKey(ctx, key)
		if err != nil {
			return d.fail("SetMany", key, err)
		}
		if v, err = d.encode(v); err != nil {
			return d.fail("SetMany", key, err)
		}
		entries = append(entries, driver.Entry{Key: k, Value: v, TTL: ttl})
		keys = append(keys, key)
	}
	if d.batch != nil {
		if err := d.batch.SetMany(ctx, entries); err != nil {
			c.done("SetMany", d, "", 0, err, 0)
			return d.fail("SetMany", "", err)
		}
	} else {
		for i, e := range entries {
			if err := d.d.Set(ctx, e); err != nil {
				c.done("SetMany", d, keys[i], 0, err, 0)
				return d.fail("SetMany", e.Key, err)
			}
		}
	}
	if c.m.wants(EventSet) {
		for _, key := range keys {
			c.m.end("SetMany", d, key, EventSet, nil, 0)
		}
	}
	for _, e := range entries {
		if err := c.indexTags(ctx, d, e.Key, ttl, nil); err != nil {
			return d.fail("SetMany", e.Key, err)
		}
	}
	return nil
}

// Many reads keys and returns the hits by key; a missing key is absent from the map.
// Every value is read into a T as [Cache.Get] would.
func Many[T any](ctx context.Context, c *Cache, keys ...string) (map[string]T, error) {
	d, err := c.driverFor("")
	if err != nil {
		return nil, d.fail("Many", "", err)
	}
	final := make([]string, len(keys))
	for i, key := range keys {
		if final[i], err = c.finalKey(ctx, key); err != nil {
			return nil, d.fail("Many", key, err)
		}
	}
	out := make(map[string]T, len(keys))
	put := func(i int, v any) error {
		var t T
		if err := d.decode(v, &t); err != nil {
			return d.fail("Many", keys[i], err)
		}
		out[keys[i]] = t
		return nil
	}
	if d.batch != nil {
		vals, found, err := d.batch.GetMany(ctx, final)
		if err != nil {
			c.done("Many", d, "", 0, err, 0)
			return nil, d.fail("Many", "", err)
		}
		for i := range final {
			c.done("Many", d, keys[i], hitOrMiss(found[i]), nil, 0)
			if found[i] {
				if err := put(i, vals[i]); err != nil {
					return nil, err
				}
			}
		}
		return out, nil
	}
	for i, k := range final {
		v, found, err := d.d.Get(ctx, k)
		c.done("Many", d, keys[i], hitOrMiss(found), err, 0)
		if err != nil {
			return nil, d.fail("Many", keys[i], err)
		}
		if found {
			if err := put(i, v); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}
