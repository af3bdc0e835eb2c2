// Package inproc holds helpers shared by the in-process drivers (memory, lru): integer
// arithmetic on stored Go values and a comparison that never panics.
package inproc

import (
	"fmt"
	"math"
	"reflect"
	"sync/atomic"

	"github.com/cachekit/cache/driver"
)

// Add returns cur + delta for an integer-valued cur. Any Go integer kind counts, and so
// does a float64 holding a whole number (a value that came through JSON). Anything else,
// and an overflow, is an error matching driver.ErrNotInteger.
func Add(cur any, delta int64) (int64, error) {
	n, ok := ToInt64(cur)
	if !ok {
		return 0, fmt.Errorf("%w: holds %T", driver.ErrNotInteger, cur)
	}
	sum := n + delta
	if (delta > 0 && sum < n) || (delta < 0 && sum > n) {
		return 0, fmt.Errorf("%w: %d%+d overflows int64", driver.ErrNotInteger, n, delta)
	}
	return sum, nil
}

// ToInt64 converts an integer-valued Go value to int64.
func ToInt64(v any) (int64, bool) {
	switch n := v.(type) {
	case int64:
		return n, true
	case int:
		return int64(n), true
	case int32:
		return int64(n), true
	case float64:
		if n == math.Trunc(n) && n >= math.MinInt64 && n < math.MaxInt64 {
			return int64(n), true
		}
		return 0, false
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return rv.Int(), true
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		u := rv.Uint()
		if u > math.MaxInt64 {
			return 0, false
		}
		return int64(u), true
	}
	return 0, false
}

// Equal reports whether a == b, and false instead of a panic when the values are of
// different types or not comparable (maps, slices).
func Equal(a, b any) (eq bool) {
	if s, ok := b.(string); ok { // the lock's token: the hot path
		as, ok := a.(string)
		return ok && as == s
	}
	ta, tb := reflect.TypeOf(a), reflect.TypeOf(b)
	if ta != tb || (ta != nil && !ta.Comparable()) {
		return false
	}
	defer func() { _ = recover() }() // an interface field holding a map still panics
	return a == b
}

// Fences are the fencing counters of an in-process driver: one counter for every key, so
// that a token still grows with every acquisition of each key (and of all of them), with
// no memory kept per key. The zero value is ready.
type Fences struct {
	n atomic.Int64
}

// Next returns the next fencing token for key: higher than every token given before.
func (f *Fences) Next(string) int64 { return f.n.Add(1) }
