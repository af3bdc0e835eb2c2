package cache

import (
	"context"
	"strings"

	"github.com/cachekit/cache/internal/token"
)

// Scan calls fn with the keys of c's scope under ns (ns itself and every "ns.*" key; ""
// for the whole scope), as the caller would name them (without the global prefix and the
// view's namespace), until fn returns false. It is for operators and tools (cachectl
// keys), not for hot paths: drivers list keys without an index (Redis: SCAN on every
// master). A driver that cannot list keys returns an error matching [ErrUnsupported].
func (c *Cache) Scan(ctx context.Context, ns string, fn func(key string) bool) error {
	d, err := c.driverFor("")
	if err != nil {
		return d.fail("Scan", ns, err)
	}
	scope, err := c.scope(ctx)
	if err != nil {
		return d.fail("Scan", ns, err)
	}
	base := join(scope, trimDots(ns)) // the namespace's own key, or the scope
	strip := 0
	if scope != "" {
		strip = len(scope) + 1
	}
	err = d.keys.Scan(ctx, base, func(k string) bool {
		if base != "" && k != base && !strings.HasPrefix(k, base+".") || len(k) < strip {
			return true // outside the namespace
		}
		return fn(k[strip:])
	})
	return d.fail("Scan", ns, err)
}

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
