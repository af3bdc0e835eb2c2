package cache

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// Tags returns a view of c whose writes (Set, SetWith, Forever, SetMany, and the values
// Remember, SWR and Cached store through it) are tagged with tags, on top of any tags the
// view already has and those of SetOptions.Tags. [Cache.InvalidateTags] on the view,
// without arguments, removes every entry of any of its tags. A tag that is empty or
// holds the reserved character "|" makes every tagged write of the view, and its
// InvalidateTags, fail with an error matching [ErrInvalidKey] before anything is
// written.
func (c *Cache) Tags(tags ...string) *Cache {
	v := *c
	v.tags = slices.Compact(slices.Sorted(slices.Values(slices.Concat(c.tags, tags))))
	return &v
}

// InvalidateTags removes every entry tagged with any of tags, on c's driver, whatever
// namespace view wrote it; without tags, those of the view ([Cache.Tags]). Tags are per
// global prefix: caches with another prefix keep theirs. An empty tag, or one holding
// the reserved character "|", is an error matching [ErrInvalidKey], before any tag is
// invalidated.
//
// Each tag keeps an index of its live entries (key + expiry) in a record of its own,
// "<prefix>.|tag:<tag>" (a name no application key can take), updated atomically with [Modify] on every tagged write,
// which also drops the entries that have expired, so the index holds at most the tag's
// live entries plus those deleted by other means since (a Remove does not know the key's
// tags); InvalidateTags empties it. An entry written while InvalidateTags runs may
// survive it.
func (c *Cache) InvalidateTags(ctx context.Context, tags ...string) error {
	d, err := c.driverFor("")
	if err != nil {
		return d.fail(opInvalidateTags, "", err)
	}
	if len(tags) == 0 {
		tags = c.tags
	}
	if err := checkTagNames(tags); err != nil {
		return d.fail(opInvalidateTags, "", err)
	}
	for _, tag := range tags {
		tk, err := c.tagKey(ctx, tag)
		if err != nil {
			return d.fail(opInvalidateTags, tag, err)
		}
		var members []string
		_, err = modify(ctx, c, target{d: d, k: tk, key: tag}, ModifyOptions{MaxAttempts: 100, forever: true, silent: true},
			func(idx map[string]int64, _ bool) (map[string]int64, error) {
				members = slices.Collect(maps.Keys(idx))
				return nil, DeleteKey
			})
		if err != nil {
			c.done(opInvalidateTags, d, tag, 0, err, 0)
			return d.fail(opInvalidateTags, tag, err)
		}
		for batch := range slices.Chunk(members, 500) {
			if err := d.d.Delete(ctx, batch...); err != nil {
				c.done(opInvalidateTags, d, tag, 0, err, 0)
				return d.fail(opInvalidateTags, tag, err)
			}
		}
		// One flushed event per tag, with the tag as Key: the entries' keys in the index
		// are final keys, not the caller's.
		c.done(opInvalidateTags, d, tag, EventFlushed, nil, 0)
	}
	return nil
}

// tagKey is the index key of tag: under the global prefix, not the namespace.
func (c *Cache) tagKey(ctx context.Context, tag string) (string, error) {
	p, err := c.prefix(ctx)
	if err != nil {
		return "", err
	}
	return join(p, reserved+recTag+tag), nil
}

// prepTagged is prep for a write tagged with the view's tags and extra: it refuses them
// (see checkTags) before anything is written.
func (c *Cache) prepTagged(ctx context.Context, override, key string, extra []string) (*namedDriver, string, error) {
	d, k, err := c.prep(ctx, override, key)
	if err != nil {
		return nil, "", err
	}
	if err := c.checkTags(d, extra); err != nil {
		return nil, "", err
	}
	return d, k, nil
}

// checkTags refuses a write tagged with the view's tags and extra that could not index
// them: a tag the cache cannot use (see checkTagNames; ErrInvalidKey), or a driver
// without the atomic read-modify-write the indexes need (ErrUnsupported). Every tagged
// write calls it before writing.
func (c *Cache) checkTags(d *namedDriver, extra []string) error {
	if len(c.tags) == 0 && len(extra) == 0 {
		return nil
	}
	if err := checkTagNames(c.tags); err != nil {
		return err
	}
	if err := checkTagNames(extra); err != nil {
		return err
	}
	if d.mod == nil && !d.hasAtomic() {
		return cannotDo(d, "a tagged write (the tag index needs Modify)")
	}
	return nil
}

// checkTagNames refuses tags that the cache cannot use: see checkTagName.
func checkTagNames(tags []string) error {
	for _, tag := range tags {
		if err := checkTagName(tag); err != nil {
			return err
		}
	}
	return nil
}

// checkTagName refuses a tag that is empty or holds the reserved character, as checkKey
// refuses such a key: an error matching ErrInvalidKey.
func checkTagName(tag string) error {
	if tag == "" {
		return fmt.Errorf("%w: empty tag", ErrInvalidKey)
	}
	if strings.Contains(tag, reserved) {
		return fmt.Errorf("%w: the tag %q contains %q, reserved for the cache's own records", ErrInvalidKey, tag, reserved)
	}
	return nil
}

// indexTags records the final key k, written with ttl (0: never expires), in the index
// of each of the view's tags and extra.
func (c *Cache) indexTags(ctx context.Context, d *namedDriver, k string, ttl time.Duration, extra []string) error {
	if len(c.tags) == 0 && len(extra) == 0 {
		return nil
	}
	var exp int64
	now := time.Now()
	if ttl > 0 {
		exp = now.Add(ttl).UnixNano()
	}
	for _, tag := range slices.Compact(slices.Sorted(slices.Values(slices.Concat(c.tags, extra)))) {
		if err := checkTagName(tag); err != nil {
			return err
		}
		tk, err := c.tagKey(ctx, tag)
		if err != nil {
			return err
		}
		// The index never expires (not even with the driver's default TTL): it must outlive
		// every entry it lists. It holds only live entries, so it stays bounded.
		_, err = modify(ctx, c, target{d: d, k: tk, key: tag}, ModifyOptions{MaxAttempts: 100, forever: true, silent: true},
			func(idx map[string]int64, _ bool) (map[string]int64, error) {
				if idx == nil {
					idx = make(map[string]int64)
				} else {
					idx = maps.Clone(idx) // in-process drivers hand over the stored map
				}
				for key, at := range idx {
					if at != 0 && at <= now.UnixNano() {
						delete(idx, key)
					}
				}
				idx[k] = exp
				return idx, nil
			})
		if err != nil {
			return fmt.Errorf("index tag %q: %w", tag, err)
		}
	}
	return nil
}
