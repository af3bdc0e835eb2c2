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
	_, err := c.set(ctx, opSet, key, v, SetOptions{TTL: ttl})
	return err
}

// SetWith stores v under key with the options in o: a conditional write, an absolute
// expiry, a per-call driver, tags.
func (c *Cache) SetWith(ctx context.Context, key string, v any, o SetOptions) (SetResult, error) {
	written, err := c.set(ctx, opSetWith, key, v, o)
	return SetResult{Written: written}, err
}

// Forever stores v under key with no expiry, whatever the driver's default TTL.
func (c *Cache) Forever(ctx context.Context, key string, v any) error {
	_, err := c.set(ctx, opForever, key, v, SetOptions{})
	return err
}

// set is the one write path of Set, SetWith and Forever (op): it checks o, writes v under
// key, indexes the entry under its tags, and reports a set event (or an error event)
// when it wrote (or failed). Forever ignores the driver's default TTL.
func (c *Cache) set(ctx context.Context, op operation, key string, v any, o SetOptions) (written bool, err error) {
	ttl, err := resolveTTL(o.TTL, o.ExpiresAt)
	if err == nil && o.OnConflict > Update {
		err = fmt.Errorf("%w: unknown %v", ErrInvalidConfig, o.OnConflict)
	}
	if err != nil {
		return false, opError(op, key, err)
	}
	d, k, err := c.prepTagged(ctx, o.Driver, key, o.Tags)
	if err != nil {
		return false, d.fail(op, key, err)
	}
	if op != opForever {
		ttl = d.orDefault(ttl)
	}
	var start stamp
	if op == opSet { // the timed write
		start = c.m.sampleStart()
	}
	written, err = d.write(ctx, driver.Entry{Key: k, Value: v, TTL: ttl, Tags: o.Tags}, o.OnConflict)
	if err != nil {
		written = false
	} else if written {
		err = c.indexTags(ctx, d, k, ttl, o.Tags)
	}
	if written || err != nil {
		c.done(op, d, key, EventSet, err, start)
	}
	return written, d.fail(op, key, err)
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
		return opError(opSetMany, "", err)
	}
	d, err := c.driverFor("")
	if err == nil {
		err = c.checkTags(d, nil)
	}
	if err != nil {
		return d.fail(opSetMany, "", err)
	}
	ttl = d.orDefault(ttl)
	entries := make([]driver.Entry, 0, len(items))
	keys := make([]string, 0, len(items)) // the callers' keys, for the events
	for key, v := range items {
		k, err := c.finalKey(ctx, key)
		if err != nil {
			return d.fail(opSetMany, key, err)
		}
		if v, err = d.encode(v); err != nil {
			return d.fail(opSetMany, key, err)
		}
		entries = append(entries, driver.Entry{Key: k, Value: v, TTL: ttl})
		keys = append(keys, key)
	}
	if d.batch != nil {
		if err := d.batch.SetMany(ctx, entries); err != nil {
			c.done(opSetMany, d, "", 0, err, 0)
			return d.fail(opSetMany, "", err)
		}
	} else {
		for i, e := range entries {
			if err := d.d.Set(ctx, e); err != nil {
				c.done(opSetMany, d, keys[i], 0, err, 0)
				return d.fail(opSetMany, e.Key, err)
			}
		}
	}
	if c.m.wants(EventSet) {
		for _, key := range keys {
			c.m.end(opSetMany, d, key, EventSet, nil, 0)
		}
	}
	for _, e := range entries {
		if err := c.indexTags(ctx, d, e.Key, ttl, nil); err != nil {
			return d.fail(opSetMany, e.Key, err)
		}
	}
	return nil
}
