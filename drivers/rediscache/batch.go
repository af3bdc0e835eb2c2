package rediscache

import (
	"context"

	"github.com/redis/go-redis/v9"

	"github.com/cachekit/cache/driver"
)

// maxBatch bounds the keys of one MGET, DEL or UNLINK: Redis runs one command to the end
// before it serves anyone else, so one huge command would stall every other client.
const maxBatch = 1000

// batches splits keys into groups that one multi-key command may carry, as indexes into
// keys: on one node, runs of at most maxBatch keys; on a Cluster, keys of one hash slot
// (a command whose keys span slots fails with CROSSSLOT); elsewhere, one key per group.
func (d *Driver) batches(keys []string) [][]int {
	var out [][]int
	switch d.topo {
	case topoSingle:
		for i := 0; i < len(keys); i += maxBatch {
			n := min(maxBatch, len(keys)-i)
			idx := make([]int, n)
			for j := range idx {
				idx[j] = i + j
			}
			out = append(out, idx)
		}
	case topoCluster:
		open := make(map[int]int) // slot → its batch in out that still has room
		for i, k := range keys {
			s := slot(k)
			b, ok := open[s]
			if !ok || len(out[b]) == maxBatch {
				b = len(out)
				out = append(out, nil)
				open[s] = b
			}
			out[b] = append(out[b], i)
		}
	default:
		out = make([][]int, len(keys))
		for i := range keys {
			out[i] = []int{i}
		}
	}
	return out
}

func pick(keys []string, idx []int) []string {
	ks := make([]string, len(idx))
	for j, i := range idx {
		ks[j] = keys[i]
	}
	return ks
}

// process sends cmds: one command as it is, several in one pipeline (go-redis sends a
// Cluster pipeline to each node concurrently). It returns the first command error.
func (d *Driver) process(ctx context.Context, cmds []redis.Cmder) error {
	if len(cmds) == 1 {
		return d.c.Process(ctx, cmds[0])
	}
	p := d.c.Pipeline()
	for _, c := range cmds {
		_ = p.Process(ctx, c)
	}
	_, err := p.Exec(ctx)
	return err
}

// GetMany reads keys with MGET: one MGET on a single node (per 1000 keys), one per hash
// slot on a Cluster, all in one pipeline.
func (d *Driver) GetMany(ctx context.Context, keys []string) ([]any, []bool, error) {
	if err := d.check(ctx); err != nil {
		return nil, nil, fail("get many", "", err)
	}
	vals := make([]any, len(keys))
	found := make([]bool, len(keys))
	if len(keys) == 0 {
		return vals, found, nil
	}
	if d.topo == topoSingle && len(keys) <= maxBatch {
		cmd := redis.NewSliceCmd(ctx, keyArgs("mget", keys)...)
		if err := d.c.Process(ctx, cmd); err != nil {
			return nil, nil, fail("get many", "", err)
		}
		fill(vals, found, nil, cmd.Val())
		return vals, found, nil
	}
	batches := d.batches(keys)
	cmds := make([]redis.Cmder, len(batches))
	for i, b := range batches {
		cmds[i] = redis.NewSliceCmd(ctx, keyArgs("mget", pick(keys, b))...)
	}
	if err := d.process(ctx, cmds); err != nil {
		return nil, nil, fail("get many", "", err)
	}
	for i, b := range batches {
		fill(vals, found, b, cmds[i].(*redis.SliceCmd).Val())
	}
	return vals, found, nil
}

// fill stores an MGET reply; idx maps reply positions to positions in vals (nil: same).
func fill(vals []any, found []bool, idx []int, reply []any) {
	for j, v := range reply {
		i := j
		if idx != nil {
			i = idx[j]
		}
		if s, ok := v.(string); ok {
			vals[i], found[i] = []byte(s), true
		}
	}
}

// SetMany writes entries with SET PX, pipelined. The writes are not atomic as a group.
func (d *Driver) SetMany(ctx context.Context, entries []driver.Entry) error {
	if err := d.check(ctx); err != nil {
		return fail("set many", "", err)
	}
	if len(entries) == 0 {
		return nil
	}
	cmds := make([]redis.Cmder, len(entries))
	for i, e := range entries {
		b, err := valueBytes(e.Value)
		if err != nil {
			return fail("set many", e.Key, err)
		}
		cmds[i] = setCmd(ctx, e.Key, b, e.TTL, "")
	}
	if err := d.process(ctx, cmds); err != nil {
		for i, c := range cmds {
			if c.Err() != nil {
				return fail("set many", entries[i].Key, c.Err())
			}
		}
		return fail("set many", "", err)
	}
	return nil
}

// Delete removes keys with DEL: one command on a single node (per 1000 keys), one per
// hash slot on a Cluster.
func (d *Driver) Delete(ctx context.Context, keys ...string) error {
	if err := d.check(ctx); err != nil {
		return fail("delete", "", err)
	}
	if len(keys) == 0 {
		return nil
	}
	if len(keys) == 1 || (d.topo == topoSingle && len(keys) <= maxBatch) {
		if err := d.c.Process(ctx, redis.NewIntCmd(ctx, keyArgs("del", keys)...)); err != nil {
			if len(keys) == 1 {
				return fail("delete", keys[0], err)
			}
			return fail("delete", "", err)
		}
		return nil
	}
	batches := d.batches(keys)
	cmds := make([]redis.Cmder, len(batches))
	for i, b := range batches {
		cmds[i] = redis.NewIntCmd(ctx, keyArgs("del", pick(keys, b))...)
	}
	if err := d.process(ctx, cmds); err != nil {
		return fail("delete", "", err)
	}
	return nil
}

func keyArgs(name string, keys []string) []any {
	args := make([]any, 1+len(keys))
	args[0] = name
	for i, k := range keys {
		args[1+i] = k
	}
	return args
}
