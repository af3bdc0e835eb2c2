package rediscache

import (
	"context"
	"errors"
	"strings"

	"github.com/redis/go-redis/v9"
)

// scanCount is the COUNT hint of each SCAN: about how many keys Redis looks at per call.
const scanCount = 1000

// DeleteNamespace deletes the key ns and every key that starts with ns + ".": DEL ns,
// then SCAN MATCH "<ns>.*" with ns's glob characters escaped, and UNLINK of each page of
// keys found, on every master of a Cluster (per hash slot) or every shard of a Ring. It
// never deletes a key such as ns + "X". It is not atomic: a key written under ns while it
// runs may survive.
func (d *Driver) DeleteNamespace(ctx context.Context, ns string) error {
	if err := d.check(ctx); err != nil {
		return fail("delete namespace", ns, err)
	}
	if err := d.brk.allow(); err != nil {
		return fail("delete namespace", ns, err)
	}
	defer d.near.evictAll()
	if ns == "" {
		return fail("delete namespace", ns, errors.New("empty namespace"))
	}
	if err := d.send(ctx, redis.NewIntCmd(ctx, "del", ns)); err != nil {
		return fail("delete namespace", ns, err)
	}
	match := escapeGlob(ns) + ".*"
	if err := d.eachNode(ctx, func(ctx context.Context, node redis.Cmdable) error {
		return d.scanUnlink(ctx, node, match)
	}); err != nil {
		return fail("delete namespace", ns, err)
	}
	return nil
}

// eachNode runs fn on every node that holds keys: every master of a Cluster (concurrently),
// every shard of a Ring, or the one client.
func (d *Driver) eachNode(ctx context.Context, fn func(context.Context, redis.Cmdable) error) error {
	per := func(ctx context.Context, c *redis.Client) error { return fn(ctx, c) }
	switch c := d.c.(type) {
	case *redis.ClusterClient:
		return c.ForEachMaster(ctx, per)
	case *redis.Ring:
		return c.ForEachShard(ctx, per)
	}
	return fn(ctx, d.c)
}

// scanUnlink walks node's keys that match and unlinks them, one SCAN page at a time.
// On a Cluster the UNLINKs go through the cluster client, one per hash slot, so that a
// slot that moves during the walk is followed.
func (d *Driver) scanUnlink(ctx context.Context, node redis.Cmdable, match string) error {
	var cursor uint64
	for {
		keys, next, err := node.Scan(ctx, cursor, match, scanCount).Result()
		if err != nil {
			return err
		}
		if len(keys) > 0 {
			if err := d.unlink(ctx, node, keys); err != nil {
				return err
			}
		}
		if next == 0 {
			return nil
		}
		cursor = next
	}
}

func (d *Driver) unlink(ctx context.Context, node redis.Cmdable, keys []string) error {
	if d.topo != topoCluster {
		// The node that listed the keys holds them. A Ring shard or a single node takes a
		// multi-key UNLINK whatever the keys.
		for i := 0; i < len(keys); i += maxBatch {
			if err := node.Unlink(ctx, keys[i:min(i+maxBatch, len(keys))]...).Err(); err != nil {
				return err
			}
		}
		return nil
	}
	batches := d.batches(keys)
	cmds := make([]redis.Cmder, len(batches))
	for i, b := range batches {
		cmds[i] = redis.NewIntCmd(ctx, keyArgs("unlink", pick(keys, b))...)
	}
	return d.process(ctx, cmds)
}

// escapeGlob escapes the characters that Redis's glob matching (SCAN MATCH, KEYS) treats
// as special, so that s matches only itself.
func escapeGlob(s string) string {
	if !strings.ContainsAny(s, `*?[]\`) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '*', '?', '[', ']', '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// Flush deletes every key of the database with FLUSHDB, on every master of a Cluster,
// but only when Options.OwnsDatabase is set; otherwise it returns an error matching
// [ErrSharedDatabase] and errors.ErrUnsupported and deletes nothing. A cache with a
// prefix never calls it: its Flush deletes only its own keys, with DeleteNamespace.
func (d *Driver) Flush(ctx context.Context) error {
	if err := d.check(ctx); err != nil {
		return fail("flush", "", err)
	}
	if err := d.brk.allow(); err != nil {
		return fail("flush", "", err)
	}
	if !d.ownsDB {
		return fail("flush", "", ErrSharedDatabase)
	}
	defer d.near.evictAll()
	if err := d.eachNode(ctx, func(ctx context.Context, node redis.Cmdable) error {
		return node.FlushDB(ctx).Err()
	}); err != nil {
		return fail("flush", "", err)
	}
	return nil
}
