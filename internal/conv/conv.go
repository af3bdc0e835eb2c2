// Package conv stores a Go value into a destination pointer, converting it when its type
// does not fit, without making the destination escape to the heap: a caller's
// `var s string; Assign(&s, v)` keeps s on its stack.
package conv

import (
	"encoding/json"
	"fmt"
	"reflect"
	"unsafe"
)

// Check returns an error unless dst is a non-nil pointer, the destination Assign and
// Into need: a nil interface, a typed nil pointer (a nil *T) and a non-pointer are
// refused. It allocates nothing when dst is valid, and dst does not escape.
func Check(dst any) error {
	_, _, err := pointee(dst)
	return err
}

// Assign stores the Go value v into *dst: directly when v's type fits (or v is a non-nil
// *T and dst a *T's target), as an integer of another size when both are signed integers
// and v fits, and otherwise through JSON. A nil v zeroes *dst. dst must be a non-nil
// pointer (otherwise Assign returns Check's error and writes nothing), and never escapes
// (see Into, which the conversions go through).
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
	elem, p, err := pointee(dst)
	if err != nil {
		return err
	}
	if v == nil {
		_, err := into(elem, p, func(any) error { return nil })
		return err
	}
	if reflect.TypeOf(v) == elem {
		// The same type: copied straight from the value in v, without a temporary.
		src := (*[2]unsafe.Pointer)(unsafe.Pointer(&v))[1]
		if direct(elem) { // the interface holds the value itself, not a pointer to it
			src = unsafe.Pointer(&(*[2]unsafe.Pointer)(unsafe.Pointer(&v))[1])
		}
		typedmemmove(rtype(elem), p, src)
		return nil
	}
	_, err = into(elem, p, func(tmp any) error {
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
// value. dst must be a non-nil pointer, and does not escape.
//
// The copy is the runtime's typed memory move (reflect.typedmemmove, with the write
// barriers the garbage collector needs), declared here with go:noescape: the compiler
// cannot see into reflect.Value.Set, which makes its receiver escape, so writing through
// a reflect.Value of dst would move every caller's variable to the heap, an allocation
// on every Get. Hiding the pointer from escape analysis instead (the runtime's noescape
// trick) is not safe here: reflect may keep the pointer where a stack move does not
// update it, and the write then lands in the old stack.
func Into(dst any, fill func(tmp any) error) (tmp any, err error) {
	elem, p, err := pointee(dst)
	if err != nil {
		return nil, err
	}
	return into(elem, p, fill)
}

// into is Into for dst's pointee, already resolved.
func into(elem reflect.Type, p unsafe.Pointer, fill func(tmp any) error) (any, error) {
	nv := reflect.New(elem)
	tmp := nv.Interface()
	if err := fill(tmp); err != nil {
		return nil, err
	}
	typedmemmove(rtype(elem), p, nv.UnsafePointer())
	return tmp, nil
}

// pointee returns the type dst points to and the pointer it holds, or an error when dst
// is not a non-nil pointer.
func pointee(dst any) (reflect.Type, unsafe.Pointer, error) {
	t := reflect.TypeOf(dst)
	p := (*[2]unsafe.Pointer)(unsafe.Pointer(&dst))[1] // the pointer dst holds
	if t == nil || t.Kind() != reflect.Pointer || p == nil {
		return nil, nil, badDst(t)
	}
	return t.Elem(), p, nil
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

// rtype is the runtime's type descriptor of t (a reflect.Type holds a *rtype, whose
// first field is it).
func rtype(t reflect.Type) unsafe.Pointer {
	return (*[2]unsafe.Pointer)(unsafe.Pointer(&t))[1]
}

// direct reports whether an interface holds a value of type t itself, rather than a
// pointer to it: a pointer-shaped type (the compiler's isdirectiface).
func direct(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Pointer, reflect.Chan, reflect.Map, reflect.Func, reflect.UnsafePointer:
		return true
	case reflect.Array:
		return t.Len() == 1 && direct(t.Elem())
	case reflect.Struct:
		return t.NumField() == 1 && direct(t.Field(0).Type)
	}
	return false
}

// typedmemmove copies a value of type t from src to dst, with the write barriers of the
// garbage collector. It is the runtime's, pushed to package reflect and kept there for
// the packages that link to it (the runtime promises not to change its signature).
//
//go:linkname typedmemmove reflect.typedmemmove
//go:noescape
func typedmemmove(t unsafe.Pointer, dst, src unsafe.Pointer)

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
