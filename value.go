package cache

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"

	"github.com/cachekit/cache/driver"
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
	if d.codec == driver.JSON && plainJSON(s) {
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

// decode reads a stored value into dst.
func (d *namedDriver) decode(v any, dst any) error {
	if d.codec == nil {
		return assign(dst, v)
	}
	b, ok := v.([]byte)
	if !ok {
		return fmt.Errorf("driver %q returned %T, want []byte from a byte driver", d.name, v)
	}
	if dst == nil {
		return errNilDst
	}
	if err := d.codec.Unmarshal(b, dst); err != nil {
		return fmt.Errorf("decode into %T: %w", dst, err)
	}
	return nil
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

// decodeRead decodes what read returned into dst, and keeps the decoded value in the
// near tier under ticket.
func (d *namedDriver) decodeRead(k string, v any, near bool, ticket uint64, dst any) error {
	if near {
		return assign(dst, v)
	}
	if err := d.decode(v, dst); err != nil {
		return err
	}
	if ticket != 0 {
		d.near.NearFill(k, reflect.ValueOf(dst).Elem().Interface(), ticket)
	}
	return nil
}

// decodeT is decodeRead into a new T.
func decodeT[T any](d *namedDriver, k string, v any, near bool, ticket uint64) (T, error) {
	var t T
	if near {
		return t, assign(&t, v)
	}
	if err := d.decode(v, &t); err != nil {
		return t, err
	}
	if ticket != 0 {
		d.near.NearFill(k, t, ticket)
	}
	return t, nil
}

// plainJSON reports whether encoding/json writes s as it is between quotes: printable
// ASCII without the characters it escapes (", \, and <, >, & for HTML safety).
func plainJSON(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20 || c > 0x7e, c == '"', c == '\\', c == '<', c == '>', c == '&':
			return false
		}
	}
	return true
}

var errNilDst = fmt.Errorf("dst must be a non-nil pointer, got nil")

// assign stores the Go value v into *dst: directly when v's type fits, else through JSON,
// so that the same code reads the same value on every driver.
func assign(dst any, v any) error {
	switch d := dst.(type) { // the common cases, without reflection
	case *string:
		if s, ok := v.(string); ok {
			*d = s
			return nil
		}
	case *[]byte:
		if b, ok := v.([]byte); ok {
			*d = b
			return nil
		}
	case *int:
		if n, ok := v.(int); ok {
			*d = n
			return nil
		}
	case *int64:
		if n, ok := v.(int64); ok {
			*d = n
			return nil
		}
	case *bool:
		if b, ok := v.(bool); ok {
			*d = b
			return nil
		}
	case *any:
		*d = v
		return nil
	case nil:
		return errNilDst
	}
	rv := reflect.ValueOf(dst)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return fmt.Errorf("dst must be a non-nil pointer, got %T", dst)
	}
	ev := rv.Elem()
	if v == nil {
		ev.SetZero()
		return nil
	}
	vv := reflect.ValueOf(v)
	if vv.Type().AssignableTo(ev.Type()) {
		ev.Set(vv)
		return nil
	}
	if vv.Kind() == reflect.Pointer && !vv.IsNil() && vv.Elem().Type().AssignableTo(ev.Type()) {
		ev.Set(vv.Elem()) // stored *T, read into a T
		return nil
	}
	if isInt(vv.Kind()) && isInt(ev.Kind()) {
		n := vv.Int()
		if ev.OverflowInt(n) {
			return fmt.Errorf("stored %d overflows %s", n, ev.Type())
		}
		ev.SetInt(n)
		return nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("stored %T does not fit %T and cannot be converted: %w", v, dst, err)
	}
	if err := json.Unmarshal(b, dst); err != nil {
		return fmt.Errorf("stored %T does not fit %T: %w", v, dst, err)
	}
	return nil
}

func isInt(k reflect.Kind) bool {
	return k >= reflect.Int && k <= reflect.Int64
}

// GetAs reads the value under key as a T: [Cache.Get] without a destination pointer.
// found is false on a miss. On an in-process driver a hit whose stored type is T costs no
// allocation, where Get's dst (passed as any) makes the caller's variable escape to the
// heap; other values convert as Get converts them.
func GetAs[T any](ctx context.Context, c *Cache, key string) (v T, found bool, err error) {
	start := c.m.sampleStart()
	d, k, err := c.prep(ctx, "", key)
	if err != nil {
		return v, false, d.fail("Get", key, err)
	}
	raw, found, near, ticket, err := d.read(ctx, k)
	if kind := eventKind(found, err); c.m.wants(kind) {
		c.m.end("Get", d, key, kind, err, start)
	}
	if err != nil || !found {
		if err != nil {
			err = d.fail("Get", key, err)
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
