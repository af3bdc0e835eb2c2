package rediscache_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/cachekit/cache"
	"github.com/cachekit/cache/driver"
	"github.com/cachekit/cache/drivers/rediscache"
	"github.com/cachekit/cache/internal/testkit/redistest"
)

// The native lists (driver.Lister) as Redis sees them: cache.NewList on Redis is a Redis
// list, kept with list commands, never a value rewritten by Modify.

type point struct {
	X int    `json:"x"`
	Y string `json:"y"`
}

// TestListWireFormat: the key is a Redis list under the final key; each item is the
// codec's bytes (JSON), so that LRANGE from any language reads it; a new list gets its TTL.
func TestListWireFormat(t *testing.T) {
	forTargets(t, func(t *testing.T, url string) {
		ctx := context.Background()
		p := scope("lwire")
		c, d := newCache(t, url, p)
		raw := d.Client()

		pts := cache.NewList[point](c, "points", time.Minute)
		if n, err := pts.Push(ctx, point{1, "a"}, point{2, `q"<`}); n != 2 || err != nil {
			t.Fatalf("Push = %d, %v; want 2", n, err)
		}
		strs := cache.NewList[string](c, "strs", 0)
		if _, err := strs.Push(ctx, "abc", "d e"); err != nil {
			t.Fatal(err)
		}
		if typ := raw.Type(ctx, p+".points").Val(); typ != "list" {
			t.Fatalf("TYPE %s.points = %q; want list", p, typ)
		}
		got, err := raw.LRange(ctx, p+".points", 0, -1).Result()
		if want := []string{`{"x":1,"y":"a"}`, `{"x":2,"y":"q\"\u003c"}`}; err != nil || !slices.Equal(got, want) {
			t.Fatalf("raw LRANGE points = %q, %v; want %q", got, err, want)
		}
		got, err = raw.LRange(ctx, p+".strs", 0, -1).Result()
		if want := []string{`"abc"`, `"d e"`}; err != nil || !slices.Equal(got, want) {
			t.Fatalf("raw LRANGE strs = %q, %v; want %q", got, err, want)
		}
		// Another service pushes JSON with RPUSH: the List reads it.
		if err := raw.RPush(ctx, p+".points", `{"x":3,"y":"from elsewhere"}`).Err(); err != nil {
			t.Fatal(err)
		}
		all, err := pts.Slice(ctx, 0, -1)
		if want := []point{{1, "a"}, {2, `q"<`}, {3, "from elsewhere"}}; err != nil || !slices.Equal(all, want) {
			t.Fatalf("All = %v, %v; want %v", all, err, want)
		}
		// TTL: the list's for a new list, none for ttl 0 and no default.
		if ms := raw.PTTL(ctx, p+".points").Val(); ms <= 50*time.Second || ms > time.Minute {
			t.Fatalf("PTTL of a new list with a 1m TTL = %v", ms)
		}
		if ms := raw.PTTL(ctx, p+".strs").Val(); ms != -1 {
			t.Fatalf("PTTL of a new list with no TTL = %v; want -1 (no expiry)", ms)
		}
	})
}

// TestListTTL: a new list gets the List's TTL (or the driver's default TTL), in the push
// that creates it, whether it appends or prepends; pushes, pops and trims keep the
// remaining TTL; the list expires when it runs out.
func TestListTTL(t *testing.T) {
	forTargets(t, func(t *testing.T, url string) {
		ctx := context.Background()
		p := scope("lttl")
		c, d := newCache(t, url, p)
		raw := d.Client()
		pttl := func(key string) time.Duration {
			t.Helper()
			ms, err := raw.PTTL(ctx, p+"."+key).Result()
			if err != nil {
				t.Fatal(err)
			}
			return ms
		}

		l := cache.NewList[int](c, "l", time.Minute)
		if _, err := l.Unshift(ctx, 1, 2); err != nil { // a new list by LPUSH gets the TTL too
			t.Fatal(err)
		}
		if ms := pttl("l"); ms <= 50*time.Second || ms > time.Minute {
			t.Fatalf("PTTL of a list created by Unshift = %v; want about 1m", ms)
		}
		// A TTL of its own, set by someone else: every operation keeps it.
		if err := raw.PExpire(ctx, p+".l", 5*time.Hour).Err(); err != nil {
			t.Fatal(err)
		}
		steps := []struct {
			name string
			f    func() error
		}{
			{"Push", func() error { _, err := l.Push(ctx, 3, 4, 5); return err }},
			{"Unshift", func() error { _, err := l.Unshift(ctx, 0); return err }},
			{"Pop", func() error { _, _, err := l.Pop(ctx); return err }},
			{"Shift", func() error { _, _, err := l.Shift(ctx); return err }},
			{"Trim", func() error { return l.Trim(ctx, 0, -2) }},
			{"Slice", func() error { _, err := l.Slice(ctx, 0, -1); return err }},
			{"Len", func() error { _, err := l.Len(ctx); return err }},
		}
		for _, s := range steps {
			if err := s.f(); err != nil {
				t.Fatalf("%s: %v", s.name, err)
			}
			if ms := pttl("l"); ms <= 4*time.Hour || ms > 5*time.Hour {
				t.Fatalf("PTTL after %s = %v; want the 5h set before (kept)", s.name, ms)
			}
		}
		if all, _ := l.Slice(ctx, 0, -1); !slices.Equal(all, []int{1, 2, 3}) {
			t.Fatalf("All = %v; want [1 2 3]", all)
		}

		// The driver's default TTL, for a List with TTL 0.
		dd := newDriver(t, rediscache.Options{URL: url, DefaultTTL: 2 * time.Hour})
		dc, err := cache.New(cache.Config{Drivers: map[string]cache.Driver{"redis": dd}, Prefix: p})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = dc.Close() })
		if _, err := cache.NewList[int](dc, "def", 0).Push(ctx, 1); err != nil {
			t.Fatal(err)
		}
		if ms := pttl("def"); ms <= time.Hour || ms > 2*time.Hour {
			t.Fatalf("PTTL of a new list with TTL 0 on a driver with a 2h default = %v", ms)
		}

		// A short TTL runs out: the list is gone, and a push makes a new one with the TTL.
		short := cache.NewList[int](c, "short", 150*time.Millisecond)
		if _, err := short.Push(ctx, 1, 2); err != nil {
			t.Fatal(err)
		}
		time.Sleep(250 * time.Millisecond)
		if n, err := short.Len(ctx); n != 0 || err != nil {
			t.Fatalf("Len after the TTL ran out = %d, %v; want 0", n, err)
		}
		if _, err := short.Push(ctx, 3); err != nil {
			t.Fatal(err)
		}
		// At most the TTL that was set; a list gone again (PTTL -2) had a TTL too. Only
		// no TTL (-1) or a longer one is wrong: no bound on how soon PTTL is read.
		if ms := pttl("short"); ms == -1 || ms > 150*time.Millisecond {
			t.Fatalf("PTTL of the list pushed again after it expired = %v; want its TTL again, at most 150ms", ms)
		}
	})
}

// TestListOrder: Unshift(a, b, c) stores a b c, as Push does; Pop and Shift take from
// either end; a push larger than the script's chunk keeps the order at both ends.
func TestListOrder(t *testing.T) {
	forTargets(t, func(t *testing.T, url string) {
		ctx := context.Background()
		p := scope("lorder")
		c, d := newCache(t, url, p)
		raw := d.Client()
		for _, ttl := range []time.Duration{0, time.Minute} { // plain LPUSH, and the script
			t.Run(fmt.Sprintf("ttl=%v", ttl), func(t *testing.T) {
				key := fmt.Sprintf("o%d", ttl)
				l := cache.NewList[string](c, key, ttl)
				if n, err := l.Unshift(ctx, "a", "b", "c"); n != 3 || err != nil {
					t.Fatalf("Unshift = %d, %v", n, err)
				}
				if got, _ := l.Slice(ctx, 0, -1); !slices.Equal(got, []string{"a", "b", "c"}) {
					t.Fatalf("after Unshift(a, b, c): %v; want [a b c]", got)
				}
				if got := raw.LRange(ctx, p+"."+key, 0, -1).Val(); !slices.Equal(got, []string{`"a"`, `"b"`, `"c"`}) {
					t.Fatalf("raw LRANGE after Unshift(a, b, c): %q", got)
				}
				if _, err := l.Unshift(ctx, "x", "y"); err != nil {
					t.Fatal(err)
				}
				if n, err := l.Push(ctx, "d", "e"); n != 7 || err != nil {
					t.Fatalf("Push = %d, %v; want 7", n, err)
				}
				if got, _ := l.Slice(ctx, 0, -1); !slices.Equal(got, []string{"x", "y", "a", "b", "c", "d", "e"}) {
					t.Fatalf("All = %v; want [x y a b c d e]", got)
				}
				if v, ok, err := l.Shift(ctx); v != "x" || !ok || err != nil {
					t.Fatalf("Shift = %q, %v, %v; want x", v, ok, err)
				}
				if v, ok, err := l.Pop(ctx); v != "e" || !ok || err != nil {
					t.Fatalf("Pop = %q, %v, %v; want e", v, ok, err)
				}
				if n, _ := l.Len(ctx); n != 5 {
					t.Fatalf("Len = %d; want 5", n)
				}
			})
		}
		// 2500 items in one push: more than the Lua script pushes at once (1000).
		big := make([]int, 2500)
		for i := range big {
			big[i] = i
		}
		for _, front := range []bool{false, true} {
			l := cache.NewList[int](c, fmt.Sprintf("big.%v", front), time.Minute)
			push := l.Push
			if front {
				push = l.Unshift
			}
			if _, err := push(ctx, -2, -1); err != nil {
				t.Fatal(err)
			}
			if n, err := push(ctx, big...); n != 2502 || err != nil {
				t.Fatalf("push of 2500 (front %v) = %d, %v; want 2502", front, n, err)
			}
			want := slices.Concat([]int{-2, -1}, big)
			if front {
				want = slices.Concat(big, []int{-2, -1})
			}
			if got, _ := l.Slice(ctx, 0, -1); !slices.Equal(got, want) {
				t.Fatalf("after a push of 2500 (front %v) the order is wrong: starts %v", front, got[:5])
			}
		}
	})
}

// TestListEmptyDeleted: a list popped, shifted or trimmed to nothing is no key at all,
// and Clear deletes it; pops on an empty list say so.
func TestListEmptyDeleted(t *testing.T) {
	forTargets(t, func(t *testing.T, url string) {
		ctx := context.Background()
		p := scope("lempty")
		c, d := newCache(t, url, p)
		raw := d.Client()
		exists := func(key string) bool { return raw.Exists(ctx, p+"."+key).Val() == 1 }

		l := cache.NewList[int](c, "l", time.Minute)
		if _, err := l.Push(ctx, 1, 2); err != nil {
			t.Fatal(err)
		}
		_, _, _ = l.Pop(ctx)
		if !exists("l") {
			t.Fatal("a list with one item left is gone")
		}
		if v, ok, err := l.Shift(ctx); v != 1 || !ok || err != nil {
			t.Fatalf("Shift = %d, %v, %v", v, ok, err)
		}
		if exists("l") {
			t.Fatal("a list emptied by Pop and Shift is still a key")
		}
		if _, ok, err := l.Pop(ctx); ok || err != nil {
			t.Fatalf("Pop on an empty list = ok %v, %v; want not ok, no error", ok, err)
		}
		if _, ok, err := l.Shift(ctx); ok || err != nil {
			t.Fatalf("Shift on an empty list = ok %v, %v; want not ok, no error", ok, err)
		}
		if all, err := l.Slice(ctx, 0, -1); all != nil || err != nil {
			t.Fatalf("All on a missing list = %v, %v; want nil", all, err)
		}
		if _, err := l.Push(ctx, 1, 2, 3); err != nil {
			t.Fatal(err)
		}
		if err := l.Trim(ctx, 5, 10); err != nil {
			t.Fatal(err)
		}
		if exists("l") {
			t.Fatal("a list trimmed to nothing is still a key")
		}
		if _, err := l.Push(ctx, 1); err != nil {
			t.Fatal(err)
		}
		if err := l.Clear(ctx); err != nil {
			t.Fatal(err)
		}
		if exists("l") {
			t.Fatal("Clear left the list")
		}
	})
}

// TestListNegativeIndexes: Slice and Trim take LRANGE's and LTRIM's indexes: inclusive,
// negative ones counting from the end, out-of-range ones clamped.
func TestListNegativeIndexes(t *testing.T) {
	forTargets(t, func(t *testing.T, url string) {
		ctx := context.Background()
		c, _ := newCache(t, url, scope("lneg"))
		l := cache.NewList[int](c, "l", time.Minute)
		if _, err := l.Push(ctx, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			start, stop int
			want        []int
		}{
			{0, -1, []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}},
			{-3, -1, []int{7, 8, 9}},
			{-1, -1, []int{9}},
			{-100, 1, []int{0, 1}},
			{2, -8, []int{2}},
			{8, 100, []int{8, 9}},
			{5, 2, nil},
			{-2, -5, nil},
			{20, 30, nil},
		} {
			if got, err := l.Slice(ctx, tc.start, tc.stop); err != nil || !slices.Equal(got, tc.want) || (tc.want == nil) != (got == nil) {
				t.Errorf("Slice(%d, %d) = %v, %v; want %v", tc.start, tc.stop, got, err, tc.want)
			}
		}
		if err := l.Trim(ctx, 1, -2); err != nil { // drop the first and the last
			t.Fatal(err)
		}
		if got, _ := l.Slice(ctx, 0, -1); !slices.Equal(got, []int{1, 2, 3, 4, 5, 6, 7, 8}) {
			t.Fatalf("after Trim(1, -2): %v", got)
		}
		if err := l.Trim(ctx, -3, -1); err != nil { // keep the last 3
			t.Fatal(err)
		}
		if got, _ := l.Slice(ctx, 0, -1); !slices.Equal(got, []int{6, 7, 8}) {
			t.Fatalf("after Trim(-3, -1): %v", got)
		}
		if err := l.Trim(ctx, -100, 100); err != nil { // everything
			t.Fatal(err)
		}
		if n, _ := l.Len(ctx); n != 3 {
			t.Fatalf("Trim(-100, 100) changed the list: Len %d", n)
		}
	})
}

// TestListWrongType: list operations on a key that holds a plain value fail with an
// error matching rediscache.ErrNotList and leave the value alone.
func TestListWrongType(t *testing.T) {
	forTargets(t, func(t *testing.T, url string) {
		ctx := context.Background()
		p := scope("lwrong")
		c, d := newCache(t, url, p)
		if err := c.Set(ctx, "plain", "v", time.Minute); err != nil {
			t.Fatal(err)
		}
		l := cache.NewList[string](c, "plain", time.Minute)
		lnoTTL := cache.NewList[string](c, "plain", 0)
		ops := map[string]func() error{
			"Push":          func() error { _, err := l.Push(ctx, "x"); return err },
			"Push (no TTL)": func() error { _, err := lnoTTL.Push(ctx, "x"); return err },
			"Unshift":       func() error { _, err := l.Unshift(ctx, "x"); return err },
			"Pop":           func() error { _, _, err := l.Pop(ctx); return err },
			"Shift":         func() error { _, _, err := l.Shift(ctx); return err },
			"Slice":         func() error { _, err := l.Slice(ctx, 0, -1); return err },
			"Len":           func() error { _, err := l.Len(ctx); return err },
			"Trim":          func() error { return l.Trim(ctx, 0, 0) },
		}
		for name, op := range ops {
			err := op()
			if !errors.Is(err, rediscache.ErrNotList) {
				t.Errorf("%s on a plain value = %v; want an error matching ErrNotList", name, err)
			} else if name == "Push" {
				t.Logf("the error: %v", err)
			}
		}
		var v string
		if found, err := c.Get(ctx, "plain", &v); !found || err != nil || v != "v" {
			t.Fatalf("the plain value is now %q, %v, %v; want it untouched", v, found, err)
		}
		if ms := d.Client().PTTL(ctx, p+".plain").Val(); ms <= 0 {
			t.Fatalf("the plain value's TTL is now %v", ms)
		}
	})
}

// TestListClosed: after Close every list method fails with driver.ErrClosed.
func TestListClosed(t *testing.T) {
	forTargets(t, func(t *testing.T, url string) {
		ctx := context.Background()
		d := newDriver(t, rediscache.Options{URL: url})
		if _, err := d.ListPush(ctx, scope("closed"), []any{[]byte(`1`)}, false, time.Second); err != nil {
			t.Fatal(err)
		}
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
		key := scope("closed")
		errs := map[string]error{}
		_, errs["ListPush"] = d.ListPush(ctx, key, []any{[]byte(`1`)}, false, 0)
		_, errs["ListPush (TTL)"] = d.ListPush(ctx, key, []any{[]byte(`1`)}, true, time.Second)
		_, _, errs["ListPop"] = d.ListPop(ctx, key, false)
		_, errs["ListRange"] = d.ListRange(ctx, key, 0, -1)
		_, errs["ListLen"] = d.ListLen(ctx, key)
		errs["ListTrim"] = d.ListTrim(ctx, key, 0, -1)
		for name, err := range errs {
			if !errors.Is(err, driver.ErrClosed) {
				t.Errorf("%s after Close = %v; want ErrClosed", name, err)
			}
		}
	})
}

// TestListPushValues: the driver takes only the codec's bytes, and says so.
func TestListPushValues(t *testing.T) {
	ctx := context.Background()
	d := newDriver(t, rediscache.Options{URL: redistest.URL(t)})
	key := scope("lvals")
	if _, err := d.ListPush(ctx, key, []any{"not bytes"}, false, 0); err == nil {
		t.Fatal("ListPush of a string, not the codec's bytes: no error")
	}
	if n, err := d.ListPush(ctx, key, nil, false, 0); n != 0 || err != nil {
		t.Fatalf("ListPush of nothing on a missing list = %d, %v; want 0", n, err)
	}
	if d.Client().Exists(ctx, key).Val() != 0 {
		t.Fatal("a failed or empty push created the key")
	}
}
