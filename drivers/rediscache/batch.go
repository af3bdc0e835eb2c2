package rediscache

import (
	"context"
	"errors"
	"fmt"

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
// Both go through the circuit breaker: while it is open, every command holds an error
// matching ErrUnavailable.
func (d *Driver) process(ctx context.Context, cmds []redis.Cmder) error {
	if len(cmds) == 1 {
		return d.send(ctx, cmds[0])
	}
	if err := d.brk.allow(); err != nil {
		for _, c := range cmds {
			c.SetErr(err)
		}
		return err
	}
	p := d.c.Pipeline()
	for _, c := range cmds {
		_ = p.Process(ctx, c)
	}
	_, err := p.Exec(ctx)
	d.brk.record(ctx, err)
	return err
}

// ErrWrongType matches, with errors.Is, the error of a read of a key that holds data of
// another Redis type (a hash, a list, a set, a sorted set, a stream) where the cache
// keeps strings: data that another program wrote under a name in the cache's prefix.
// The cache leaves it alone: Get, Pull and GetMany (and so Cache.Get, Many, Remember
// and SWR) return this error, never a miss that would make the caller store a value
// over it. A plain Set replaces it, as Redis's SET does: that is the caller's explicit
// write. It wraps Redis's WRONGTYPE reply where Redis gave one.
var ErrWrongType = fmt.Errorf("%w: a Redis value of another type, written by another program; the cache leaves it alone", driver.ErrForeign)

// wrongType makes a WRONGTYPE reply match ErrWrongType.
func wrongType(err error) error {
	if err != nil && redis.HasErrorPrefix(err, "WRONGTYPE") && !errors.Is(err, ErrWrongType) {
		return fmt.Errorf("%w: %w", ErrWrongType, err)
	}
	return err
}

// GetMany reads keys with MGET: one MGET on a single node (per 1000 keys), one per hash
// slot on a Cluster, all in one pipeline; a lone key (one key in all, or alone in its
// slot) is a GET. A key of another type is an error matching ErrWrongType, never a
// miss: GET says so itself, but MGET answers nil for it as for a missing key, so the
// keys an MGET missed get a TYPE each, pipelined in one more round trip. A call that
// hits every key pays nothing for the check.
func (d *Driver) GetMany(ctx context.Context, keys []string) ([]any, []bool, error) {
	if err := d.check(ctx); err != nil {
		return nil, nil, fail("get many", "", err)
	}
	defer d.near.observedKeys(keys) // see observed: reads stay monotonic
	vals := make([]any, len(keys))
	found := make([]bool, len(keys))
	switch {
	case len(keys) == 0:
		return vals, found, nil
	case len(keys) == 1:
		cmd := redis.NewStringCmd(ctx, "get", keys[0])
		if err := d.send(ctx, cmd); err != nil {
			if err == redis.Nil {
				return vals, found, nil
			}
			return nil, nil, fail("get many", keys[0], err)
		}
		b, _ := cmd.Bytes()
		vals[0], found[0] = b, true
		return vals, found, nil
	case d.topo == topoSingle && len(keys) <= maxBatch:
		cmd := redis.NewSliceCmd(ctx, keyArgs("mget", keys)...)
		if err := d.send(ctx, cmd); err != nil {
			return nil, nil, fail("get many", "", err)
		}
		if fill(vals, found, nil, cmd.Val()) {
			if err := d.checkMisses(ctx, keys, found, nil); err != nil {
				return nil, nil, err
			}
		}
		return vals, found, nil
	}
	batches := d.batches(keys)
	cmds := make([]redis.Cmder, len(batches))
	for i, b := range batches {
		if len(b) == 1 {
			cmds[i] = redis.NewStringCmd(ctx, "get", keys[b[0]])
		} else {
			cmds[i] = redis.NewSliceCmd(ctx, keyArgs("mget", pick(keys, b))...)
		}
	}
	perr := d.process(ctx, cmds) // a GET's miss (redis.Nil) is an error here: look at each
	missed := false
	var lone []bool // the keys a GET read: their misses need no TYPE
	for i, b := range batches {
		switch c := cmds[i].(type) {
		case *redis.StringCmd:
			if lone == nil {
				lone = make([]bool, len(keys))
			}
			lone[b[0]] = true
			switch err := c.Err(); {
			case err == redis.Nil:
			case err != nil:
				return nil, nil, fail("get many", keys[b[0]], err)
			default:
				v, _ := c.Bytes()
				vals[b[0]], found[b[0]] = v, true
			}
		case *redis.SliceCmd:
			if err := c.Err(); err != nil {
				return nil, nil, fail("get many", "", err)
			}
			if fill(vals, found, b, c.Val()) {
				missed = true
			}
		}
	}
	if perr != nil && perr != redis.Nil {
		return nil, nil, fail("get many", "", perr) // not any command's own error
	}
	if missed {
		if err := d.checkMisses(ctx, keys, found, lone); err != nil {
			return nil, nil, err
		}
	}
	return vals, found, nil
}

// checkMisses sends TYPE for every key that an MGET missed (not found, not in lone), in
// one pipeline, and returns an error matching ErrWrongType for the first that holds
// another type. A key that was missing or is a string by now stays a miss: it was one
// when MGET ran.
func (d *Driver) checkMisses(ctx context.Context, keys []string, found, lone []bool) error {
	var idx []int
	var cmds []redis.Cmder
	for i, ok := range found {
		if !ok && (lone == nil || !lone[i]) {
			idx = append(idx, i)
			cmds = append(cmds, redis.NewStatusCmd(ctx, "type", keys[i]))
		}
	}
	if err := d.process(ctx, cmds); err != nil {
		for j, c := range cmds {
			if c.Err() != nil {
				return fail("get many", keys[idx[j]], c.Err())
			}
		}
		return fail("get many", "", err)
	}
	for j, c := range cmds {
		if typ := c.(*redis.StatusCmd).Val(); typ != "none" && typ != "string" {
			return fail("get many", keys[idx[j]], fmt.Errorf("%w: TYPE is %s", ErrWrongType, typ))
		}
	}
	return nil
}

// fill stores an MGET reply; idx maps reply positions to positions in vals (nil: same).
// It reports whether some key came back nil: missing, or of another type.
func fill(vals []any, found []bool, idx []int, reply []any) (missed bool) {
	for j, v := range reply {
		i := j
		if idx != nil {
			i = idx[j]
		}
		if s, ok := v.(string); ok {
			vals[i], found[i] = []byte(s), true
		} else {
			missed = true
		}
	}
	return missed
}

// SetMany writes entries with SET PX, pipelined. The writes are not atomic as a group.
func (d *Driver) SetMany(ctx context.Context, entries []driver.Entry) error {
	if err := d.check(ctx); err != nil {
		return fail("set many", "", err)
	}
	defer d.near.evictEntries(entries)
	if len(entries) == 0 {
		return nil
	}
	cmds := make([]redis.Cmder, len(entries))
	for i, e := range entries {
		b, err := valueBytes(e.Value)
		if err != nil {
			return fail("set many", e.Key, err)
		}
		cmds[i] = noRetryCmd(setCmd(ctx, e.Key, b, e.TTL, ""))
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
	defer d.near.evictKeys(keys)
	if len(keys) == 0 {
		return nil
	}
	if len(keys) == 1 || (d.topo == topoSingle && len(keys) <= maxBatch) {
		if err := d.sendOnce(ctx, redis.NewIntCmd(ctx, keyArgs("del", keys)...)); err != nil {
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
		cmds[i] = noRetryCmd(redis.NewIntCmd(ctx, keyArgs("del", pick(keys, b))...))
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
