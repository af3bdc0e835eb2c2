// Package conv stores a Go value into a destination pointer, converting it when its type
// does not fit.
//
// The write goes through package reflect, so the destination escapes to the heap: a
// caller's `var u User; Assign(&u, v)` costs the allocation of u. A caller on a hot path
// that wants none uses a generic read that returns the value instead (the root
// package's GetAs).
package conv

import (
	"encoding/json"
	"fmt"
	"reflect"
)

// Check returns an error unless dst is a non-nil pointer, the destination Assign and
// Into need: a nil interface, a typed nil pointer (a nil *T) and a non-pointer are
// refused.
func Check(dst any) error {
	_, err := target(dst)
	return err
}

// Assign stores the Go value v into *dst: directly when v's type fits (or v is a non-nil
// *T and dst a *T's target), as an integer of another size when both are signed integers
// and v fits, and otherwise through JSON. A nil v zeroes *dst. dst must be a non-nil
// pointer (otherwise Assign returns Check's error and writes nothing).
func Assign(dst any, v any) error {
	switch d := dst.(type) { // the common cases, without reflection; a nil d falls through to pointee's error
	case *string:
		if s, ok := v.(string); ok && d != nil {
			*d = s
			return nil
		}
	case *[]byte:
		if b, ok := v.([]byte); ok && d != nil {
			*d = b
			return nil
		}
	case *int:
		if n, ok := v.(int); ok && d != nil {
			*d = n
			return nil
		}
	case *int64:
		if n, ok := v.(int64); ok && d != nil {
			*d = n
			return nil
		}
	case *bool:
		if b, ok := v.(bool); ok && d != nil {
			*d = b
			return nil
		}
	case *any:
		if d != nil {
			*d = v
			return nil
		}
	}
	ev, err := target(dst)
	if err != nil {
		return err
	}
	if v == nil {
		ev.SetZero()
		return nil
	}
	if vv := reflect.ValueOf(v); vv.Type() == ev.Type() {
		ev.Set(vv)
		return nil
	}
	_, err = into(ev, func(tmp any) error {
		ev := reflect.ValueOf(tmp).Elem()
		vv := reflect.ValueOf(v)
		switch {
		case vv.Type().AssignableTo(ev.Type()):
			ev.Set(vv)
		case vv.Kind() == reflect.Pointer && !vv.IsNil() && vv.Elem().Type().AssignableTo(ev.Type()):
			ev.Set(vv.Elem()) // stored *T, read into a T
		case isInt(vv.Kind()) && isInt(ev.Kind()):
			n := vv.Int()
			if ev.OverflowInt(n) {
				return fmt.Errorf("stored %d overflows %s", n, ev.Type())
			}
			ev.SetInt(n)
		default:
			b, err := json.Marshal(v)
			if err != nil {
				return fmt.Errorf("stored %T does not fit %v and cannot be converted: %w", v, reflect.TypeOf(dst), err)
			}
			if err := json.Unmarshal(b, tmp); err != nil {
				return fmt.Errorf("stored %T does not fit %v: %w", v, reflect.TypeOf(dst), err)
			}
		}
		return nil
	})
	return err
}

func isInt(k reflect.Kind) bool { return k >= reflect.Int && k <= reflect.Int64 }

// Into calls fill with a pointer to a new zero value of the type dst points to (a value
// on the heap, of fill's own) and, if fill succeeds, copies that value into *dst,
// replacing what *dst held. It returns the new pointer, for a caller that keeps the
// value. dst must be a non-nil pointer.
func Into(dst any, fill func(tmp any) error) (tmp any, err error) {
	ev, err := target(dst)
	if err != nil {
		return nil, err
	}
	return into(ev, fill)
}

// into is Into for dst's pointee, already resolved.
func into(ev reflect.Value, fill func(tmp any) error) (any, error) {
	nv := reflect.New(ev.Type())
	tmp := nv.Interface()
	if err := fill(tmp); err != nil {
		return nil, err
	}
	ev.Set(nv.Elem())
	return tmp, nil
}

// target returns the settable value dst points to, or an error when dst is not a
// non-nil pointer.
func target(dst any) (reflect.Value, error) {
	v := reflect.ValueOf(dst)
	if v.Kind() != reflect.Pointer || v.IsNil() {
		return reflect.Value{}, badDst(reflect.TypeOf(dst))
	}
	return v.Elem(), nil
}

// badDst is the error of a destination of type t that is not a non-nil pointer.
func badDst(t reflect.Type) error {
	switch {
	case t == nil:
		return fmt.Errorf("dst must be a non-nil pointer, got nil")
	case t.Kind() == reflect.Pointer:
		return fmt.Errorf("dst must be a non-nil pointer, got a nil %v", t)
	}
	return fmt.Errorf("dst must be a non-nil pointer, got %v, not a pointer", t)
}

// PlainJSON reports whether encoding/json writes s as it is between quotes: printable
// ASCII without the characters it escapes (", \, and <, >, & for HTML safety).
func PlainJSON(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20 || c > 0x7e, c == '"', c == '\\', c == '<', c == '>', c == '&':
			return false
		}
	}
	return true
}
