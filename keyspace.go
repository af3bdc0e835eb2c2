package cache

import (
	"context"
	"fmt"
	"strings"
)

// The key space. A stored key is the global prefix, the namespaces and the key, joined
// with the separator: "billing.users.1". The records the cache keeps for itself are
// named with the reserved marker, which no application key, namespace or prefix may
// hold, so that no application key can take their names. docs/keys.md states the rules.
const (
	// separator joins the prefix, the namespaces and the key.
	separator = "."
	// reserved marks the cache's own records. It is printable, so that an operator reads
	// the records in a key listing; it is not a Redis glob character, not a hash-tag
	// brace, not allowed unescaped in a URL (RFC 3986), and not part of JSON's syntax, so
	// that application keys (paths, URLs, dotted or colon-separated names) rarely hold it.
	reserved = "|"
)

// Namespace returns a view of c whose keys live under ns: key "1" of
// c.Namespace("users") is "users.1" (after the global prefix). Namespaces nest:
// c.Namespace("a").Namespace("b") is c.Namespace("a.b"). Leading and trailing dots of ns
// are trimmed; an empty ns returns c itself. On the view, Flush removes only the namespace.
// A namespace that holds the reserved character "|" makes every keyed call of the view
// fail with an error matching [ErrInvalidKey].
func (c *Cache) Namespace(ns string) *Cache {
	ns = trimDots(ns)
	if ns == "" {
		return c
	}
	return &Cache{m: c.m, pinned: c.pinned, ns: join(c.ns, ns), fixed: join(c.fixed, ns), tags: c.tags}
}

// prefix returns the global prefix of a call: Config.Prefix, or PrefixFunc's result,
// which must be a valid prefix (see checkPrefix).
func (c *Cache) prefix(ctx context.Context) (string, error) {
	if c.m.prefixFunc == nil {
		return c.m.prefix, nil
	}
	p := c.m.prefixFunc(ctx)
	if err := checkPrefix(p); err != nil {
		return "", fmt.Errorf("%w: %w: PrefixFunc returned %w", ErrInvalidKey, ErrInvalidConfig, err)
	}
	return p, nil
}

// checkPrefix refuses a prefix that could share keys with another prefix: empty (no
// prefix: the whole store), with the separator (a prefix "acme.eu" lies inside the prefix
// "acme": "acme" would read its keys as "eu.*" and its Flush would remove them), or with
// the reserved character.
func checkPrefix(p string) error {
	switch {
	case p == "":
		return fmt.Errorf("the empty prefix: a prefix must not be empty (no prefix would see every prefix's keys)")
	case strings.Contains(p, separator):
		if i := strings.Index(p, separator); i > 0 {
			return fmt.Errorf("the prefix %q: a prefix must not contain the separator %q (its keys would lie inside the prefix %q)", p, separator, p[:i])
		}
		return fmt.Errorf("the prefix %q: a prefix must not contain the separator %q", p, separator)
	case strings.Contains(p, reserved):
		return fmt.Errorf("the prefix %q: a prefix must not contain %q, reserved for the cache's own records", p, reserved)
	}
	return nil
}

// scope is everything a key is joined under: the global prefix, then the namespace.
// Without PrefixFunc it is joined once, when the view is made.
func (c *Cache) scope(ctx context.Context) (string, error) {
	if err := c.checkNamespace(); err != nil {
		return "", err
	}
	if c.m.prefixFunc == nil {
		return c.fixed, nil
	}
	p, err := c.prefix(ctx)
	if err != nil {
		return "", err
	}
	return join(p, c.ns), nil
}

// checkNamespace refuses a view whose namespace holds the reserved character.
func (c *Cache) checkNamespace() error {
	if strings.IndexByte(c.ns, reserved[0]) >= 0 { // IndexByte: this runs on every call
		return fmt.Errorf("%w: the namespace %q contains %q, reserved for the cache's own records", ErrInvalidKey, c.ns, reserved)
	}
	return nil
}

// checkKey refuses an application key that is empty or holds the reserved character.
// It is the one check of every key the application names: prep and finalKey run it.
func checkKey(key string) error {
	if key == "" {
		return ErrInvalidKey
	}
	if strings.IndexByte(key, reserved[0]) >= 0 {
		return fmt.Errorf("%w: %q contains %q, reserved for the cache's own records", ErrInvalidKey, key, reserved)
	}
	return nil
}

// finalKey is the key as the driver sees it. The only allocation is the join, and only
// when there is a prefix or a namespace.
func (c *Cache) finalKey(ctx context.Context, key string) (string, error) {
	scope, err := c.keyScope(ctx, key)
	if err != nil {
		return "", err
	}
	return join(scope, key), nil
}

// keyScope checks key and returns its scope: finalKey without the join, for the reads
// that hand an inproc.JoinGetter the two parts.
func (c *Cache) keyScope(ctx context.Context, key string) (string, error) {
	if err := checkKey(key); err != nil {
		return "", err
	}
	return c.scope(ctx)
}

// The records the cache keeps for itself. A key's records are named recordKey(k, name):
// the stored key k, the separator, the reserved character and the record's name, as in
// "billing.user.1.|none". They lie under k's own name, so that RemoveNamespace of k or
// of any namespace above it, and Flush, remove them with k; and no application key can
// take their names, since none holds the reserved character. A tag's index lies under
// the global prefix: "billing.|tag:customer.42".
const (
	recNone  = "none"          // Remember's negative-caching mark (NegativeTTL)
	recFresh = "fresh"         // SWR's freshness mark
	recLock  = "remember-lock" // Remember's Distributed load lock
	recTag   = "tag:"          // the index of a tag, followed by the tag
)

// recordKey is the stored key of the record name about the stored key k.
func recordKey(k, name string) string { return k + separator + reserved + name }

func join(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return a + separator + b
}

func trimDots(s string) string { return strings.Trim(s, separator) }
