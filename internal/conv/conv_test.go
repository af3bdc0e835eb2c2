package conv

import (
	"encoding/json"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

func TestAssign(t *testing.T) {
	type point struct{ X, Y int }
	var s string
	if err := Assign(&s, "a"); err != nil || s != "a" {
		t.Fatalf("string: %q %v", s, err)
	}
	var n int
	if err := Assign(&n, int64(42)); err != nil || n != 42 {
		t.Fatalf("int64 into int: %d %v", n, err)
	}
	var i8 int8
	if err := Assign(&i8, 300); err == nil || !strings.Contains(err.Error(), "overflows") {
		t.Fatalf("300 into int8: %v", err)
	}
	var p point
	if err := Assign(&p, &point{1, 2}); err != nil || p != (point{1, 2}) {
		t.Fatalf("*T into T: %v %v", p, err)
	}
	if err := Assign(&p, map[string]int{"X": 3, "Y": 4}); err != nil || p != (point{3, 4}) {
		t.Fatalf("through JSON: %v %v", p, err)
	}
	if err := Assign(&p, nil); err != nil || p != (point{}) {
		t.Fatalf("nil: %v %v", p, err)
	}
	var a any
	if err := Assign(&a, 7); err != nil || a != 7 {
		t.Fatalf("any: %v %v", a, err)
	}
	if err := Assign(&n, "x"); err == nil {
		t.Fatal(`"x" into an int: no error`)
	}
	if err := Assign(n, 1); err == nil || !strings.Contains(err.Error(), "non-nil pointer") {
		t.Fatalf("not a pointer: %v", err)
	}
	if err := Assign((*point)(nil), point{}); err == nil {
		t.Fatal("nil pointer: no error")
	}
}

// TestAssignAllocatesNothing: a value of dst's type is copied without an allocation of
// Assign's own (the destination itself escapes, so it is declared once, outside the
// measured function).
func TestAssignAllocatesNothing(t *testing.T) {
	v := any("hello")
	type big struct{ A, B, C string }
	w := any(big{"a", "b", "c"})
	var s string
	var b big
	if n := testing.AllocsPerRun(100, func() {
		s, b = "", big{}
		_ = Assign(&s, v)
		_ = Assign(&b, w)
	}); n != 0 || s != "hello" || b.C != "c" {
		t.Fatalf("%v allocations", n)
	}
}

// PlainJSON may say false of a string that encoding/json writes as it is (é), never
// true of one that it changes.
func TestPlainJSON(t *testing.T) {
	for _, s := range []string{"", "abc", "pid.1#ABCDEF", "a b", "~", "<", ">", "é", "\n", `"`, `\`, "&", "\x7f", "\x00"} {
		b, _ := json.Marshal(s)
		plain := string(b) == `"`+s+`"`
		if got := PlainJSON(s); got && !plain {
			t.Errorf("PlainJSON(%q) = true, but encoding/json writes %s", s, b)
		}
		if !PlainJSON(s) && plain && s[0] < 0x80 && s[0] != 0x7f {
			t.Errorf("PlainJSON(%q) = false for printable ASCII that encoding/json keeps", s)
		}
	}
}

//go:noinline
func assignAtDepth(n int, v any) []string {
	var pad [64]byte
	_ = pad
	if n > 0 {
		return assignAtDepth(n-1, v)
	}
	var cur []string
	_ = Assign(&cur, v)
	return cur
}

// TestAssignAcrossStackGrowth: Assign's write through reflect reaches *dst even when the
// goroutine's stack grows (and moves) during the call: fresh goroutines, each calling at
// a different depth. A write through a pointer hidden from escape analysis would lose
// some of them (a stack move does not update such a pointer).
func TestAssignAcrossStackGrowth(t *testing.T) {
	v := any([]string{"a", "b"})
	var wg sync.WaitGroup
	var lost atomic.Int32
	for g := range 200 {
		wg.Go(func() {
			if got := assignAtDepth(g%40, v); len(got) != 2 {
				lost.Add(1)
			}
		})
	}
	wg.Wait()
	if n := lost.Load(); n > 0 {
		t.Fatalf("%d of 200 writes lost", n)
	}
}

// TestAssignSameType: a value whose type is dst's is copied straight from the interface,
// for every shape an interface stores a value in (pointer-shaped types are held in the
// interface itself, others behind a pointer).
func TestAssignSameType(t *testing.T) {
	n := 7
	type onePtr struct{ P *int }
	type twoFields struct {
		P *int
		S string
	}
	m := map[string]int{"a": 1}
	var gotPtr *int
	if err := Assign(&gotPtr, &n); err != nil || gotPtr != &n {
		t.Fatalf("*int: %v %v", gotPtr, err)
	}
	var gotMap map[string]int
	if err := Assign(&gotMap, m); err != nil || gotMap["a"] != 1 {
		t.Fatalf("map: %v %v", gotMap, err)
	}
	var gotOne onePtr
	if err := Assign(&gotOne, onePtr{&n}); err != nil || gotOne.P != &n {
		t.Fatalf("struct{*int}: %v %v", gotOne, err)
	}
	var gotArr [1]*int
	if err := Assign(&gotArr, [1]*int{&n}); err != nil || gotArr[0] != &n {
		t.Fatalf("[1]*int: %v %v", gotArr, err)
	}
	var gotTwo twoFields
	if err := Assign(&gotTwo, twoFields{&n, "s"}); err != nil || gotTwo.P != &n || gotTwo.S != "s" {
		t.Fatalf("struct{*int, string}: %v %v", gotTwo, err)
	}
	var gotSlice []int
	if err := Assign(&gotSlice, []int{1, 2}); err != nil || len(gotSlice) != 2 {
		t.Fatalf("[]int: %v %v", gotSlice, err)
	}
}
