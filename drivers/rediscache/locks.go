package rediscache

import (
	"context"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cachekit/cache/driver"
)

// Extend sets key's TTL to ttl if it still holds old (a lock's renewal), with one Lua
// script: GET, compare, PEXPIRE. It runs on a client of its own that fails fast when
// Redis cannot be reached (one dial, one retry, no backoff), built from the driver's
// client's options: a renewal against a stopped Redis fails in about a millisecond
// instead of redialing until its deadline, so a lost lock is noticed at the renewal
// that fails.
func (d *Driver) Extend(ctx context.Context, key string, old any, ttl time.Duration) (bool, error) {
	if err := d.check(ctx); err != nil {
		return false, fail("extend", key, err)
	}
	b, err := valueBytes(old)
	if err != nil {
		return false, fail("extend", key, err)
	}
	if ttl <= 0 {
		return false, fail("extend", key, errNoTTL)
	}
	n, err := extendScript.run(ctx, d.lockc, []string{key}, b, pxMillis(ttl)).Int64()
	if err != nil {
		return false, fail("extend", key, err)
	}
	return n == 1, nil
}

var errNoTTL = errors.New("extend needs a TTL > 0")

// CompareAndSwap writes e if e.Key still holds old, with one Lua script, and wakes the
// key's watchers when it wrote.
func (d *Driver) CompareAndSwap(ctx context.Context, old any, e driver.Entry) (bool, error) {
	if err := d.check(ctx); err != nil {
		return false, fail("compare-and-swap", e.Key, err)
	}
	ob, err := valueBytes(old)
	if err != nil {
		return false, fail("compare-and-swap", e.Key, err)
	}
	nb, err := valueBytes(e.Value)
	if err != nil {
		return false, fail("compare-and-swap", e.Key, err)
	}
	var px int64
	switch {
	case e.KeepTTL:
		px = -1 // SET KEEPTTL (Redis 6+)
	case e.TTL > 0:
		px = pxMillis(e.TTL)
	}
	n, err := compareAndSwapScript.run(ctx, d.c, []string{e.Key}, ob, nb, px).Int64()
	if err != nil {
		return false, fail("compare-and-swap", e.Key, err)
	}
	return n == 1, nil
}

// CreateFenced creates e if e.Key is absent and returns the key's next fencing number,
// with one Lua script. The counter is the key e.Key + ":fence" (with a hash tag that
// keeps it in e.Key's Cluster slot when e.Key has none, see [FenceKey]); it never
// expires, so the numbers keep growing across acquisitions, processes and restarts of
// the holders, until someone deletes it (RemoveNamespace and Flush of its prefix do).
func (d *Driver) CreateFenced(ctx context.Context, e driver.Entry) (int64, bool, error) {
	if err := d.check(ctx); err != nil {
		return 0, false, fail("create fenced", e.Key, err)
	}
	b, err := valueBytes(e.Value)
	if err != nil {
		return 0, false, fail("create fenced", e.Key, err)
	}
	var px int64
	if e.TTL > 0 {
		px = pxMillis(e.TTL)
	}
	n, err := createFencedScript.run(ctx, d.c, []string{e.Key, fenceKey(e.Key)}, b, px).Int64()
	if err != nil {
		return 0, false, fail("create fenced", e.Key, err)
	}
	return n, n > 0, nil
}

// FenceKey returns the key under which the driver keeps key's fencing counter:
// key + ":fence", followed by "{<tag>}" when key has no hash tag of its own, so that the
// counter lies in key's Cluster hash slot.
func FenceKey(key string) string { return fenceKey(key) }

// TTL returns key's remaining TTL with PTTL: found is false for a missing key, and the
// TTL is 0 for a key that never expires.
func (d *Driver) TTL(ctx context.Context, key string) (time.Duration, bool, error) {
	if err := d.check(ctx); err != nil {
		return 0, false, fail("ttl", key, err)
	}
	cmd := redis.NewIntCmd(ctx, "pttl", key)
	if err := d.c.Process(ctx, cmd); err != nil {
		return 0, false, fail("ttl", key, err)
	}
	switch ms := cmd.Val(); {
	case ms == -2:
		return 0, false, nil
	case ms == -1:
		return 0, true, nil
	case ms <= 0: // expiring right now
		return time.Millisecond, true, nil
	default:
		return time.Duration(ms) * time.Millisecond, true, nil
	}
}
