package cache

import (
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
