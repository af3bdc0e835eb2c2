package rediscache

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cachekit/cache/driver"
)

// Native lists (driver.Lister), for cache.NewList. A list is a Redis list under the final
// key, one item per element, each the codec's bytes (JSON by default), so that a service
// in another language reads it with LRANGE. Every operation is one command, or for a push
// that may create the list with a TTL one Lua script:
//
//   - ListPush: RPUSH (LPUSH for front). When the list may be new and gets a TTL, one Lua
//     script: EXISTS, the push, and PEXPIRE only if the list did not exist. An existing
//     list keeps its TTL.
//   - ListPop: RPOP (LPOP for front). ListRange: LRANGE. ListLen: LLEN. ListTrim: LTRIM.
//
// None of them changes a key's TTL, and Redis deletes a list left empty. A key holding a
// plain value (written by Set) is an error matching [ErrNotList], and is left alone.

var _ driver.Lister = (*Driver)(nil)

// ErrNotList is returned, wrapped, by the list operations on a key that holds something
// other than a list (Redis's WRONGTYPE reply), such as a value written by Set. The key is
// left as it was.
var ErrNotList = errors.New("the key holds a value that is not a list")

var (
	//go:embed lua/list_push.lua
	listPushLua string

	listPushScript = newScript(listPushLua)
)

// listError makes Redis's WRONGTYPE reply match ErrNotList.
func listError(err error) error {
	var re redis.Error
	if errors.As(err, &re) && strings.Contains(err.Error(), "WRONGTYPE") {
		return fmt.Errorf("%w: %w", ErrNotList, err)
	}
	return err
}

// ListPush appends vals to the list under key (prepends them one by one with front, as
// LPUSH does) and returns the new length. A list that this call creates gets ttlIfNew
// (0: no expiry), in the same atomic step.
func (d *Driver) ListPush(ctx context.Context, key string, vals []any, front bool, ttlIfNew time.Duration) (int64, error) {
	if err := d.check(ctx); err != nil {
		return 0, fail("list push", key, err)
	}
	defer d.near.evict(key)
	if len(vals) == 0 {
		n, err := d.ListLen(ctx, key)
		if err != nil {
			return 0, err // already wrapped
		}
		return n, nil
	}
	items := make([]any, len(vals))
	for i, v := range vals {
		b, err := valueBytes(v)
		if err != nil {
			return 0, fail("list push", key, err)
		}
		items[i] = b
	}
	if ttlIfNew <= 0 {
		name := "rpush"
		if front {
			name = "lpush"
		}
		cmd := redis.NewIntCmd(ctx, append([]any{name, key}, items...)...)
		if err := d.sendOnce(ctx, cmd); err != nil {
			return 0, fail("list push", key, listError(err))
		}
		return cmd.Val(), nil
	}
	side := "0"
	if front {
		side = "1"
	}
	args := append([]any{side, pxMillis(ttlIfNew)}, items...)
	n, err := listPushScript.run(ctx, once{guarded{d.brk, d.c}}, []string{key}, args...).Int64()
	if err != nil {
		return 0, fail("list push", key, listError(err))
	}
	return n, nil
}

// ListPop removes and returns the last item of the list under key (the first, with
// front), with RPOP or LPOP. found is false for an empty or missing list.
func (d *Driver) ListPop(ctx context.Context, key string, front bool) (any, bool, error) {
	if err := d.check(ctx); err != nil {
		return nil, false, fail("list pop", key, err)
	}
	defer d.near.evict(key)
	name := "rpop"
	if front {
		name = "lpop"
	}
	cmd := redis.NewStringCmd(ctx, name, key)
	if err := d.sendOnce(ctx, cmd); err != nil {
		if err == redis.Nil {
			return nil, false, nil
		}
		return nil, false, fail("list pop", key, listError(err))
	}
	b, _ := cmd.Bytes()
	return b, true, nil
}

// ListRange returns the items start … stop (inclusive, negative indexes counting from the
// end) of the list under key, with LRANGE: each a []byte.
func (d *Driver) ListRange(ctx context.Context, key string, start, stop int64) ([]any, error) {
	if err := d.check(ctx); err != nil {
		return nil, fail("list range", key, err)
	}
	cmd := redis.NewStringSliceCmd(ctx, "lrange", key, start, stop)
	if err := d.send(ctx, cmd); err != nil {
		return nil, fail("list range", key, listError(err))
	}
	out := make([]any, len(cmd.Val()))
	for i, s := range cmd.Val() {
		out[i] = []byte(s)
	}
	return out, nil
}

// ListLen returns the length of the list under key with LLEN: 0 for a missing key.
func (d *Driver) ListLen(ctx context.Context, key string) (int64, error) {
	if err := d.check(ctx); err != nil {
		return 0, fail("list len", key, err)
	}
	cmd := redis.NewIntCmd(ctx, "llen", key)
	if err := d.send(ctx, cmd); err != nil {
		return 0, fail("list len", key, listError(err))
	}
	return cmd.Val(), nil
}

// ListTrim keeps the items start … stop of the list under key, with LTRIM; Redis deletes
// a list trimmed to nothing.
func (d *Driver) ListTrim(ctx context.Context, key string, start, stop int64) error {
	if err := d.check(ctx); err != nil {
		return fail("list trim", key, err)
	}
	defer d.near.evict(key)
	cmd := redis.NewStatusCmd(ctx, "ltrim", key, start, stop)
	if err := d.send(ctx, cmd); err != nil {
		return fail("list trim", key, listError(err))
	}
	return nil
}
