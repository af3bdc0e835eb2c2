package cache

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/cachekit/cache/internal/token"
)

// ListLocks returns the locks held under ns (see [Cache.Scan]): every key whose value is
// a lock token, with its owner and remaining TTL. For operators: it reads every key under
// ns.
func ListLocks(ctx context.Context, c *Cache, ns string) ([]LockInfo, error) {
	var keys []string
	if err := c.Scan(ctx, ns, func(k string) bool { keys = append(keys, k); return true }); err != nil {
		return nil, err
	}
	var out []LockInfo
	for _, k := range keys {
		info, err := InspectLock(ctx, c, k)
		if err != nil || !info.Held || !token.Is(info.Token) {
			continue // not a lock, or gone
		}
		out = append(out, info)
	}
	return out, nil
}

// LockInfo describes a lock, for operators: see [InspectLock].
type LockInfo struct {
	// Key is the lock's key, as the caller names it.
	Key string
	// Held reports whether the key holds a lock.
	Held bool
	// Owner is the holder's owner label; Token is the whole stored token.
	Owner, Token string
	// TTL is the remaining TTL; -1 when the driver cannot tell, 0 for no expiry.
	TTL time.Duration
}

// InspectLock tells who holds the lock key and for how long, without touching it.
func InspectLock(ctx context.Context, c *Cache, key string) (LockInfo, error) {
	d, k, err := c.prep(ctx, "", key)
	if err != nil {
		return LockInfo{}, d.fail(opInspectLock, key, err)
	}
	info, err := inspect(ctx, d, k)
	if err != nil {
		return LockInfo{}, d.fail(opInspectLock, key, err)
	}
	info.Key = key
	return info, nil
}

func inspect(ctx context.Context, d *namedDriver, key string) (LockInfo, error) {
	v, found, err := d.d.Get(ctx, key)
	if err != nil || !found {
		return LockInfo{}, err
	}
	var token string
	if err := d.decode(v, &token); err != nil {
		return LockInfo{}, fmt.Errorf("the key does not hold a lock: %w", err)
	}
	i := strings.LastIndexByte(token, '#')
	if i < 0 {
		return LockInfo{}, fmt.Errorf("the key holds %q, not a lock token", token)
	}
	info := LockInfo{Held: true, Owner: token[:i], Token: token, TTL: -1}
	if d.ttlr != nil {
		ttl, found, err := d.ttlr.TTL(ctx, key)
		if err != nil {
			return LockInfo{}, err
		}
		if !found { // released between the two reads
			return LockInfo{}, nil
		}
		info.TTL = ttl
	}
	return info, nil
}

// ForceRelease deletes the lock key whoever holds it: for operators clearing a stuck
// lock. The holder's fn keeps running (its own release then finds nothing to release).
// Prefer waiting for the TTL when the holder may still be alive.
func ForceRelease(ctx context.Context, c *Cache, key string) error {
	if err := c.Remove(ctx, key); err != nil {
		return opError(opForceRelease, key, err)
	}
	return nil
}
