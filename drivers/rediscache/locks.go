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
// Redis cannot be reached (one dial, never a second run), built from the driver's
// client's options: a renewal against a stopped Redis fails in about a millisecond
// instead of redialing until its deadline, so a lost lock is noticed at the renewal
// that fails.
//
// With Options.LockReplicas, the script is followed by WAIT on the same connection, and
// a renewal that too few replicas acknowledged returns an error matching
// [ErrNotReplicated] (the key keeps its new TTL on the master).
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
	if d.replicas > 0 {
		cmd, wait := extendScript.runWait(ctx, d, d.lockc, []string{key}, b, pxMillis(ttl))
		n, err := cmd.Int64()
		if err != nil {
			return false, fail("extend", key, err)
		}
		if n != 1 {
			return false, nil
		}
		if err := d.checkReplicated(wait); err != nil {
			return false, fail("extend", key, err)
		}
		return true, nil
	}
	n, err := extendScript.run(ctx, d.lockOnce, []string{key}, b, pxMillis(ttl)).Int64()
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
	defer d.near.evict(e.Key)
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
	n, err := compareAndSwapScript.run(ctx, d.execOnce, []string{e.Key}, ob, nb, px).Int64()
	if err != nil {
		return false, fail("compare-and-swap", e.Key, err)
	}
	return n == 1, nil
}

// CreateFenced creates e if e.Key is absent and returns the key's next fencing number,
// with one Lua script. The counter is the key e.Key + ".|fence" (with a hash tag that
// keeps it in e.Key's Cluster slot when e.Key has none, see [FenceKey]), a bare decimal
// integer that never expires.
//
// The number handed out is max(counter + 1, the Redis server's clock in microseconds
// since the Unix epoch, from TIME), and the counter is set to it, in the same atomic
// step as the create. So the numbers strictly increase across acquisitions, processes
// and restarts of the holders, and also across a loss of the counter (a Redis restart
// without persistence, a failover to a replica that had not received the last
// increments, a FLUSHDB, or a RemoveNamespace or Flush of the lock's prefix), as long as
// the clock of the server that hands out the next number is ahead of the clock that
// handed out the lost ones by at least the time between them: a clock that moves
// forward on one server, and clocks that agree closely across the servers of a failover
// group. A clock stepped back, or a new master whose clock is behind, can hand out a
// number that is not above one already handed out. The numbers are large (about 1.8e15
// in 2026) but stay below 2^53 until the year 2255, so they are exact in a JSON number
// and a float64; the driver reads them as int64 without loss in any case.
//
// With Options.LockReplicas > 0, the number is handed out only once WAIT reports that
// many replicas acknowledged the script's writes (see [Options]); otherwise
// CreateFenced removes the key it wrote (best effort; the counter keeps its new value)
// and returns an error matching [ErrNotReplicated].
func (d *Driver) CreateFenced(ctx context.Context, e driver.Entry) (int64, bool, error) {
	if err := d.check(ctx); err != nil {
		return 0, false, fail("create fenced", e.Key, err)
	}
	defer d.near.evict(e.Key)
	b, err := valueBytes(e.Value)
	if err != nil {
		return 0, false, fail("create fenced", e.Key, err)
	}
	var px int64
	if e.TTL > 0 {
		px = pxMillis(e.TTL)
	}
	keys := []string{e.Key, fenceKey(e.Key)}
	if d.replicas > 0 {
		cmd, wait := createFencedScript.runWait(ctx, d, d.c, keys, b, px)
		n, err := cmd.Int64()
		if err != nil {
			var re redis.Error
			if !errors.As(err, &re) { // the answer may be lost, not the write
				d.undo(ctx, e.Key, b)
			}
			return 0, false, fail("create fenced", e.Key, err)
		}
		if n <= 0 {
			return 0, false, nil
		}
		if err := d.checkReplicated(wait); err != nil {
			d.undo(ctx, e.Key, b)
			return 0, false, fail("create fenced", e.Key, err)
		}
		return n, true, nil
	}
	n, err := createFencedScript.run(ctx, d.execOnce, keys, b, px).Int64()
	if err != nil {
		return 0, false, fail("create fenced", e.Key, err)
	}
	return n, n > 0, nil
}

// FenceKey returns the key under which the driver keeps key's fencing counter:
// key + ".|fence", followed by "{<tag>}" when key has no hash tag of its own, so that the
// counter lies in key's Cluster hash slot.
func FenceKey(key string) string { return fenceKey(key) }

// TTL returns key's remaining TTL with PTTL: found is false for a missing key, and the
// TTL is 0 for a key that never expires.
func (d *Driver) TTL(ctx context.Context, key string) (time.Duration, bool, error) {
	if err := d.check(ctx); err != nil {
		return 0, false, fail("ttl", key, err)
	}
	cmd := redis.NewIntCmd(ctx, "pttl", key)
	if err := d.exec.Process(ctx, cmd); err != nil {
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
