package cache

import (
	"context"
	"strings"
)

// Scan calls fn with the keys of c's scope under ns (ns itself and every "ns.*" key; ""
// for the whole scope), as the caller would name them (without the global prefix and the
// view's namespace), until fn returns false. It is for operators and tools (cachectl
// keys), not for hot paths: drivers list keys without an index (Redis: SCAN on every
// master). A driver that cannot list keys returns an error matching [ErrUnsupported].
func (c *Cache) Scan(ctx context.Context, ns string, fn func(key string) bool) error {
	d, err := c.driverFor("")
	if err != nil {
		return d.fail(opScan, ns, err)
	}
	scope, err := c.scope(ctx)
	if err != nil {
		return d.fail(opScan, ns, err)
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
	return d.fail(opScan, ns, err)
}
