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

// readResult is what a read found: the value v, if found; near when v came from the near
// tier ([driver.Near]), already decoded; a ticket other than 0 asks for the value read
// from the store to be kept there once decoded ([namedDriver.decodeRead]).
type readResult struct {
	v      any
	found  bool
	near   bool
	ticket uint64
	k      string // the final key; "" when a driver.JoinGetter was handed its two parts
}

// read is the driver's Get of the final key k, through its near tier when it has one.
func (d *namedDriver) read(ctx context.Context, k string) (readResult, error) {
	r := readResult{k: k}
	if d.near != nil {
		if v, ok := d.near.NearGet(k); ok {
			r.v, r.found, r.near = v, true, true
			return r, nil
		}
		r.ticket = d.near.NearReserve(k)
	}
	var err error
	r.v, r.found, err = d.d.Get(ctx, k)
	return r, err
}

// readAt is read of key under scope (its prefix and namespace, see keyScope): a
// driver.JoinGetter is handed the two parts, so that a hit builds no joined key;
// otherwise the key is joined.
func (d *namedDriver) readAt(ctx context.Context, scope, key string) (readResult, error) {
	if d.jget != nil && scope != "" {
		v, found, err := d.jget.GetJoined(ctx, scope, key)
		return readResult{v: v, found: found}, err
	}
	return d.read(ctx, join(scope, key))
}

// decodeRead decodes what read returned into dst, and keeps the decoded value in the
// near tier under its ticket.
func (d *namedDriver) decodeRead(r readResult, dst any) error {
	if r.near {
		return conv.Assign(dst, r.v)
	}
	decoded, err := d.decodeKeep(r.v, dst)
	if err != nil {
		return err
	}
	if r.ticket != 0 && decoded != nil {
		d.near.NearFill(r.k, reflect.ValueOf(decoded).Elem().Interface(), r.ticket)
	}
	return nil
}

// decodeT is decodeRead into a new T.
func decodeT[T any](d *namedDriver, r readResult) (T, error) {
	var t T
	if r.near {
		return t, conv.Assign(&t, r.v)
	}
	if err := d.decode(r.v, &t); err != nil {
		return t, err
	}
	if r.ticket != 0 {
		d.near.NearFill(r.k, t, r.ticket)
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
		return v, false, d.fail(opGet, key, err)
	}
	r, err := d.readAt(ctx, scope, key)
	if kind := eventKind(r.found, err); c.m.wants(kind) {
		c.m.end(opGet, d, key, kind, err, start)
	}
	if err != nil || !r.found {
		if err != nil && !c.failsOpen(ctx, err) {
			err = d.fail(opGet, key, err)
		} else {
			err = nil
		}
		return v, false, err
	}
	if t, ok := r.v.(T); ok && (d.codec == nil || r.near) {
		return t, true, nil
	}
	return decodeAs[T](d, key, r)
}

// decodeAs is GetAs's slow path, apart so that its &t does not send the fast path's
// result to the heap.
func decodeAs[T any](d *namedDriver, key string, r readResult) (T, bool, error) {
	t, err := decodeT[T](d, r)
	if err != nil {
		return t, true, d.fail(opGet, key, err)
	}
	return t, true, nil
}
