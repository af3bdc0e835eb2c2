package cache

import (
	"context"
	"fmt"
	"reflect"

	"github.com/cachekit/cache/driver"
	"github.com/cachekit/cache/internal/conv"
)

// encode turns v into what the driver stores: v itself for an in-process driver, the
// codec's bytes for a byte driver.
func (d *namedDriver) encode(v any) (any, error) {
	if d.codec == nil {
		return v, nil
	}
	if s, ok := v.(string); ok {
		return d.encodeString(s)
	}
	b, err := d.codec.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode %T: %w", v, err)
	}
	return b, nil
}

// encodeString is encode for a string, without boxing it into an any first (one
// allocation less on every lock).
func (d *namedDriver) encodeString(s string) (any, error) {
	if d.codec == nil {
		return s, nil
	}
	if d.codec == driver.JSON && conv.PlainJSON(s) {
		// What encoding/json makes of a plain string, in one allocation: lock tokens,
		// most string values.
		b := make([]byte, 0, len(s)+2)
		return append(append(append(b, '"'), s...), '"'), nil
	}
	b, err := d.codec.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("encode %T: %w", s, err)
	}
	return b, nil
}

// decode reads a stored value into dst. A codec decodes into a new value that is then
// copied into *dst, replacing what it held: see [conv.Into].
func (d *namedDriver) decode(v any, dst any) error {
	_, err := d.decodeKeep(v, dst)
	return err
}

// decodeKeep is decode that also returns, for a byte driver, a pointer to the decoded
// value (nil for an in-process driver).
func (d *namedDriver) decodeKeep(v any, dst any) (decoded any, err error) {
	if d.codec == nil {
		return nil, conv.Assign(dst, v)
	}
	b, ok := v.([]byte)
	if !ok {
		return nil, fmt.Errorf("driver %q returned %v, want []byte from a byte driver", d.name, reflect.TypeOf(v))
	}
	return conv.Into(dst, func(tmp any) error {
		if err := d.codec.Unmarshal(b, tmp); err != nil {
			return fmt.Errorf("decode into %v: %w", reflect.TypeOf(dst), err)
		}
		return nil
	})
}

// read is the driver's Get, through its near tier ([driver.Near]) when it has one: a
// copy kept there is returned already decoded (near is true). A ticket other than 0 asks
// for the value read from the store to be kept there once decoded ([decodeRead]).
func (d *namedDriver) read(ctx context.Context, k string) (v any, found, near bool, ticket uint64, err error) {
	if d.near != nil {
		if v, ok := d.near.NearGet(k); ok {
			return v, true, true, 0, nil
		}
		ticket = d.near.NearReserve(k)
	}
	v, found, err = d.d.Get(ctx, k)
	return v, found, false, ticket, err
}

// readAt is read of key under scope (its prefix and namespace, see keyScope): an
// inproc.JoinGetter, or a driver.Near for its near tier, is handed the two
// parts, so that a hit builds no joined key (k is then ""); otherwise the key is
// joined, and k is it.
func (d *namedDriver) readAt(ctx context.Context, scope, key string) (v any, found, near bool, ticket uint64, k string, err error) {
	if scope != "" {
		if d.jget != nil {
			v, found, err = d.jget.GetJoined(ctx, scope, key)
			return v, found, false, 0, "", err
		}
		if d.near != nil {
			if v, ok := d.near.NearGetJoined(scope, key); ok {
				return v, true, true, 0, "", nil
			}
		}
	}
	k = join(scope, key)
	v, found, near, ticket, err = d.read(ctx, k)
	return v, found, near, ticket, k, err
}

// decodeRead decodes what read returned into dst, and keeps the decoded value in the
// near tier under ticket.
func (d *namedDriver) decodeRead(k string, v any, near bool, ticket uint64, dst any) error {
	if near {
		return conv.Assign(dst, v)
	}
	decoded, err := d.decodeKeep(v, dst)
	if err != nil {
		return err
	}
	if ticket != 0 && decoded != nil {
		d.near.NearFill(k, reflect.ValueOf(decoded).Elem().Interface(), ticket)
	}
	return nil
}

// decodeT is decodeRead into a new T.
func decodeT[T any](d *namedDriver, k string, v any, near bool, ticket uint64) (T, error) {
	var t T
	if near {
		return t, conv.Assign(&t, v)
	}
	if err := d.decode(v, &t); err != nil {
		return t, err
	}
	if ticket != 0 {
		d.near.NearFill(k, t, ticket)
	}
	return t, nil
}

// GetAs reads the value under key as a T: [Cache.Get] without a destination pointer.
// found is false on a miss. On an in-process driver a hit whose stored type is T costs no
// allocation, where Get's dst (passed as any) makes the caller's variable escape to the
// heap; other values convert as Get converts them.
func GetAs[T any](ctx context.Context, c *Cache, key string) (v T, found bool, err error) {
	start := c.m.sampleStart()
	d, scope, err := c.prepScope(ctx, "", key)
	if err != nil {
		return v, false, d.fail("Get", key, err)
	}
	raw, found, near, ticket, k, err := d.readAt(ctx, scope, key)
	if kind := eventKind(found, err); c.m.wants(kind) {
		c.m.end("Get", d, key, kind, err, start)
	}
	if err != nil || !found {
		if err != nil && !c.readFailsOpen(ctx, "Get", d, key, err) {
			err = d.fail("Get", key, err)
		} else {
			err = nil
		}
		return v, false, err
	}
	if t, ok := raw.(T); ok && (d.codec == nil || near) {
		return t, true, nil
	}
	return decodeAs[T](d, k, key, raw, near, ticket)
}

// decodeAs is GetAs's slow path, apart so that its &t does not send the fast path's
// result to the heap.
func decodeAs[T any](d *namedDriver, k, key string, raw any, near bool, ticket uint64) (T, bool, error) {
	t, err := decodeT[T](d, k, raw, near, ticket)
	if err != nil {
		return t, true, d.fail("Get", key, err)
	}
	return t, true, nil
}
