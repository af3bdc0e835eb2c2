package cache

import (
	"context"
	"strings"
)

// Namespace returns a view of c whose keys live under ns: key "1" of
// c.Namespace("users") is "users.1" (after the global prefix). Namespaces nest:
// c.Namespace("a").Namespace("b") is c.Namespace("a.b"). Leading and trailing dots of ns
// are trimmed; an empty ns returns c itself. On the view, Flush removes only the namespace.
func (c *Cache) Namespace(ns string) *Cache {
	ns = trimDots(ns)
	if ns == "" {
		return c
	}
	return &Cache{m: c.m, pinned: c.pinned, ns: join(c.ns, ns), tags: c.tags}
}

// scope is everything a key is joined under: the global prefix, then the namespace.
func (c *Cache) scope(ctx context.Context) string {
	p := c.m.prefix
	if c.m.prefixFunc != nil {
		p = trimDots(c.m.prefixFunc(ctx))
	}
	return join(p, c.ns)
}

// finalKey is the key as the driver sees it. The only allocation is the join, and only
// when there is a prefix or a namespace.
func (c *Cache) finalKey(ctx context.Context, key string) (string, error) {
	if key == "" {
		return "", ErrInvalidKey
	}
	if c.m.prefixFunc == nil && c.ns == "" {
		if c.m.prefix == "" {
			return key, nil
		}
		return c.m.prefix + "." + key, nil
	}
	return join(c.scope(ctx), key), nil
}

func join(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return a + "." + b
}

func trimDots(s string) string { return strings.Trim(s, ".") }
