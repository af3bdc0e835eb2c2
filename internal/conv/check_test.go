package conv

import (
	"strings"
	"testing"
)

// A typed nil pointer is refused with an error, like an untyped nil, on every path of
// Assign (the fast paths of the common types too) and of Into; nothing is written and
// nothing panics.
func TestNilDestinations(t *testing.T) {
	type point struct{ X int }
	var (
		s   *string
		b   *[]byte
		i   *int
		i64 *int64
		ok  *bool
		a   *any
		p   *point
	)
	for _, tc := range []struct {
		name string
		dst  any
		v    any
	}{
		{"untyped nil", nil, "x"}, {"*string", s, "x"}, {"*[]byte", b, []byte("x")}, {"*int", i, 1},
		{"*int64", i64, int64(1)}, {"*bool", ok, true}, {"*any", a, 1}, {"*point", p, point{1}},
		{"*point from a map", p, map[string]any{"X": 1}}, {"*int from an int64", i, int64(1)}, {"*string from nil", s, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				if r := recover(); r != nil {
					t.Fatalf("panic: %v", r)
				}
			}()
			for name, err := range map[string]error{
				"Check":  Check(tc.dst),
				"Assign": Assign(tc.dst, tc.v),
			} {
				if err == nil || !strings.Contains(err.Error(), "non-nil pointer") {
					t.Errorf("%s = %v; want the nil-destination error", name, err)
				}
			}
			if _, err := Into(tc.dst, func(any) error { t.Error("fill called"); return nil }); err == nil {
				t.Error("Into: no error")
			}
		})
	}
	var n int
	for name, dst := range map[string]any{"*int": &n, "**int": new(*int), "*any": new(any)} {
		if err := Check(dst); err != nil {
			t.Errorf("Check(%s) = %v", name, err)
		}
	}
	if err := Check(n); err == nil || !strings.Contains(err.Error(), "got int, not a pointer") {
		t.Errorf("Check(an int) = %v", err)
	}
	if err := Check(p); err == nil || !strings.Contains(err.Error(), "got a nil *conv.point") {
		t.Errorf("Check(a nil *point) = %v; want it named", err)
	}
}

func TestCheckAllocatesNothing(t *testing.T) {
	if n := testing.AllocsPerRun(100, func() {
		var s string
		if Check(&s) != nil {
			t.Fatal("refused")
		}
	}); n != 0 {
		t.Fatalf("%v allocations", n)
	}
}
