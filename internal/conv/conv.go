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

// Assign stores the Go value v into *dst: directly when v's type fits (or v is a non-nil
// *T and dst a *T's target), as an integer of another size when both are signed integers
// and v fits, and otherwise through JSON. A nil v zeroes *dst. dst must be a non-nil
// pointer. dst never escapes: it is only type-switched, reflected on and written
// through, and JSON decodes into a value of its own.
func Assign(dst any, v any) error {
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
	}
	ev, err := Target(dst)
	if err != nil {
		return err
	}
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
		return fmt.Errorf("stored %T does not fit %v and cannot be converted: %w", v, reflect.TypeOf(dst), err)
	}
	tmp := reflect.New(ev.Type())
	if err := json.Unmarshal(b, tmp.Interface()); err != nil {
		return fmt.Errorf("stored %T does not fit %v: %w", v, reflect.TypeOf(dst), err)
	}
	ev.Set(tmp.Elem())
	return nil
}

func isInt(k reflect.Kind) bool { return k >= reflect.Int && k <= reflect.Int64 }

// Target is *dst, settable, or an error when dst is not a non-nil pointer. dst does not
// escape.
//
// reflect.Value.Set makes its receiver escape (the compiler cannot see that Set only
// writes through it), and through dst that would move every caller's variable to the
// heap. So the Value is rebuilt from dst's address passed through a uintptr, which
// hides it from escape analysis as the runtime's noescape does. The caller must only
// write through the Value during the call that made it, never keep it; it lives on the
// stack, where a stack move updates it.
func Target(dst any) (reflect.Value, error) {
	rv := reflect.ValueOf(dst)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return reflect.Value{}, fmt.Errorf("dst must be a non-nil pointer, got %v", reflect.TypeOf(dst))
	}
	return reflect.NewAt(rv.Type().Elem(), noescape(dst)).Elem(), nil
}

// noescape returns the pointer held by p (a pointer in an interface), hidden from escape
// analysis: see Target.
func noescape(p any) unsafe.Pointer {
	var x uintptr = uintptr((*[2]unsafe.Pointer)(unsafe.Pointer(&p))[1])
	return *(*unsafe.Pointer)(unsafe.Pointer(&x))
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
