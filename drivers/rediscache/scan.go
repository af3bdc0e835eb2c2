package rediscache

import (
	"context"
	"sync"

	"github.com/redis/go-redis/v9"
)

// scanKeysCount is the COUNT hint of each SCAN that Scan sends.
const scanKeysCount = 500

// Scan calls fn with every key that starts with prefix ("" for every key of the
// database), until fn returns false: SCAN MATCH "<prefix>*" COUNT 500, with prefix's glob
// characters escaped, on every master of a Cluster (one after the other) or every shard
// of a Ring. fn runs on the caller's goroutine, one key at a time. Keys come in no
// particular order; a key written or deleted during the scan may or may not be seen, and
// on a Cluster whose slots move during the scan a key may be seen twice. Expired keys
// are never listed (SCAN skips them).
func (d *Driver) Scan(ctx context.Context, prefix string, fn func(key string) bool) error {
	if err := d.check(ctx); err != nil {
		return fail("scan", prefix, err)
	}
	if err := d.brk.allow(); err != nil {
		return fail("scan", prefix, err)
	}
	nodes, err := d.nodes(ctx)
	if err != nil {
		return fail("scan", prefix, err)
	}
	match := escapeGlob(prefix) + "*"
	for _, node := range nodes {
		more, err := d.scanNode(ctx, node, match, fn)
		if err != nil {
			return fail("scan", prefix, err)
		}
		if !more {
			return nil
		}
	}
	return nil
}

// scanNode walks node's keys that match, one SCAN page at a time, and hands them to fn.
// more is false once fn has returned false.
func (d *Driver) scanNode(ctx context.Context, node redis.Cmdable, match string, fn func(string) bool) (more bool, err error) {
	var cursor uint64
	for {
		if err := d.check(ctx); err != nil {
			return false, err
		}
		keys, next, err := node.Scan(ctx, cursor, match, scanKeysCount).Result()
		if err != nil {
			return false, err
		}
		for _, k := range keys {
			if !fn(k) {
				return false, nil
			}
		}
		if next == 0 {
			return true, nil
		}
		cursor = next
	}
}

// nodes returns the nodes that hold keys (see eachNode): every master of a Cluster,
// every shard of a Ring, or the one client.
func (d *Driver) nodes(ctx context.Context) ([]redis.Cmdable, error) {
	var (
		mu  sync.Mutex
		out []redis.Cmdable
	)
	err := d.eachNode(ctx, func(_ context.Context, node redis.Cmdable) error {
		mu.Lock()
		out = append(out, node)
		mu.Unlock()
		return nil
	})
	return out, err
}
