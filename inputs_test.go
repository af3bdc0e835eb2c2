package cache_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cachekit/cache"
	"github.com/cachekit/cache/drivers/filecache"
)

type inputUser struct{ Name string }

// inputDrivers are the drivers the bad-input tests run on: in-process ones (values kept
// as Go values: the direct and converting assignments) and a byte driver (the codec's
// decode).
func inputDrivers(t *testing.T) map[string]cache.Driver {
	t.Helper()
	f, err := filecache.New(filecache.Options{Dir: t.TempDir(), SweepInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	return map[string]cache.Driver{"memory": newMem(t), "file": f}
}

// A Get or Pull into a nil destination (a nil interface, or a typed nil pointer such as
// a `var u *User`) is an error, never a panic, on every path: a hit of the stored type,
// a hit that converts, a decode, and a miss. Pull refuses it before it takes the value,
// so the value stays stored.
func TestNilDestinationIsAnError(t *testing.T) {
	ctx := ctxT(t)
	for name, d := range inputDrivers(t) {
		t.Run(name, func(t *testing.T) {
			c := newCache(t, cache.Config{Drivers: map[string]cache.Driver{name: d}})
			values := map[string]any{"string": "ada", "int": 7, "user": inputUser{"ada"}, "map": map[string]any{"Name": "ada"}}
			for key, v := range values {
				if err := c.Set(ctx, key, v, time.Minute); err != nil {
					t.Fatal(err)
				}
			}
			var (
				nilString *string
				nilInt    *int
				nilInt64  *int64
				nilBool   *bool
				nilBytes  *[]byte
				nilAny    *any
				nilUser   *inputUser
				nilMap    *map[string]any
			)
			dsts := map[string]any{
				"untyped nil": nil, "*string": nilString, "*int": nilInt, "*int64": nilInt64,
				"*bool": nilBool, "*[]byte": nilBytes, "*any": nilAny, "*User": nilUser, "*map": nilMap,
			}
			for _, key := range []string{"string", "int", "user", "map", "missing"} {
				for dname, dst := range dsts {
					check := func(op string, found bool, err error) {
						t.Helper()
						if err == nil || !strings.Contains(err.Error(), "non-nil pointer") {
							t.Errorf("%s(%q) into %s = %v, %v; want the nil-destination error", op, key, dname, found, err)
						}
					}
					found, err := callNoPanic(t, func() (bool, error) { return c.Get(ctx, key, dst) })
					check("Get", found, err)
					found, err = callNoPanic(t, func() (bool, error) { return c.Pull(ctx, key, dst) })
					check("Pull", found, err)
					if key == "missing" {
						continue
					}
					if ok, err := c.Has(ctx, key); !ok || err != nil {
						t.Errorf("after Pull(%q) into %s was refused, Has = %v, %v; want the value still stored", key, dname, ok, err)
						if err := c.Set(ctx, key, values[key], time.Minute); err != nil {
							t.Fatal(err)
						}
					}
				}
			}
		})
	}
}

// callNoPanic runs f and fails the test, rather than crashing it, if f panics.
func callNoPanic(t *testing.T, f func() (bool, error)) (found bool, err error) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			t.Errorf("panic: %v", r)
			found, err = false, nil
		}
	}()
	return f()
}

// A Get into a bad destination is an error event of Get, on a miss too, like any failed
// Get. (That the check costs a hit nothing is TestGetHitAllocatesNothing's.)
func TestNilDestinationEmitsAnErrorEvent(t *testing.T) {
	ctx := ctxT(t)
	var got []cache.Event
	c := newCache(t, cache.Config{Hooks: []cache.Hook{{Kinds: []cache.EventKind{cache.EventError}, Observe: func(e cache.Event) { got = append(got, e) }}}})
	var u *inputUser
	if _, err := c.Get(ctx, "missing", u); err == nil {
		t.Fatal("Get into a nil *User: no error")
	}
	if len(got) != 1 || got[0].Op != "Get" || got[0].Key != "missing" || got[0].Err == nil {
		t.Fatalf("events = %+v; want one error event of Get on the key", got)
	}
}

// A tag holding the reserved "|" is refused with an error matching ErrInvalidKey, like an
// empty tag: by every tagged write before anything is written, and by InvalidateTags.
func TestTagWithReservedCharacterIsRefused(t *testing.T) {
	for _, bad := range []string{"a|b", "|", "|tag:x", "x|"} {
		for name, write := range map[string]func(ctx context.Context, c *cache.Cache) error{
			"Set":     func(ctx context.Context, c *cache.Cache) error { return c.Tags(bad).Set(ctx, "k", 1, time.Minute) },
			"Forever": func(ctx context.Context, c *cache.Cache) error { return c.Tags("ok", bad).Forever(ctx, "k", 1) },
			"SetWith": func(ctx context.Context, c *cache.Cache) error {
				_, err := c.SetWith(ctx, "k", 1, cache.SetOptions{TTL: time.Minute, Tags: []string{"ok", bad}})
				return err
			},
			"SetWith Create": func(ctx context.Context, c *cache.Cache) error {
				_, err := c.SetWith(ctx, "k", 1, cache.SetOptions{TTL: time.Minute, OnConflict: cache.Create, Tags: []string{bad}})
				return err
			},
			"SetWith on a view": func(ctx context.Context, c *cache.Cache) error {
				_, err := c.Tags(bad).SetWith(ctx, "k", 1, cache.SetOptions{TTL: time.Minute})
				return err
			},
			"SetMany": func(ctx context.Context, c *cache.Cache) error {
				return c.Tags(bad).SetMany(ctx, map[string]any{"k": 1, "k2": 2}, time.Minute)
			},
			"Remember": func(ctx context.Context, c *cache.Cache) error {
				_, err := cache.Remember(ctx, c.Tags(bad), "k", time.Minute, func(context.Context) (int, error) { return 1, nil })
				return err
			},
			"SWR": func(ctx context.Context, c *cache.Cache) error {
				_, err := cache.SWR(ctx, c.Tags(bad), "k", cache.SWROptions{Fresh: time.Minute, Stale: time.Hour}, func(context.Context) (int, error) { return 1, nil })
				return err
			},
			"Cached": func(ctx context.Context, c *cache.Cache) error {
				_, err := cache.Cached(c.Tags(bad), "m", time.Minute, func(context.Context, int) (int, error) { return 1, nil }).Get(ctx, 1)
				return err
			},
			"InvalidateTags":           func(ctx context.Context, c *cache.Cache) error { return c.InvalidateTags(ctx, "ok", bad) },
			"InvalidateTags on a view": func(ctx context.Context, c *cache.Cache) error { return c.Tags(bad).InvalidateTags(ctx) },
		} {
			t.Run(bad+"/"+name, func(t *testing.T) {
				c, mem := newScannable(t, cache.Config{Prefix: "app"})
				err := write(ctxT(t), c)
				if !errors.Is(err, cache.ErrInvalidKey) || !strings.Contains(err.Error(), fmt.Sprintf("%q", bad)) {
					t.Fatalf("with the tag %q = %v; want an error naming it, matching ErrInvalidKey", bad, err)
				}
				if left := storedKeys(t, mem); len(left) != 0 {
					t.Fatalf("the refused call stored %q", left)
				}
			})
		}
	}
}

// A negative MaxAttempts is refused with an error matching ErrInvalidConfig before the
// key is read or written, on a driver with an atomic update (memory) and on one that
// compare-and-swaps (file); 0 keeps its meaning, the default.
func TestModifyRefusesNegativeMaxAttempts(t *testing.T) {
	ctx := ctxT(t)
	for name, d := range inputDrivers(t) {
		t.Run(name, func(t *testing.T) {
			c := newCache(t, cache.Config{Drivers: map[string]cache.Driver{name: d}})
			for _, n := range []int{-1, -100} {
				ran := false
				_, err := cache.ModifyWith(ctx, c, "n", cache.ModifyOptions{MaxAttempts: n}, func(cur int, _ bool) (int, error) {
					ran = true
					return cur + 1, nil
				})
				if !errors.Is(err, cache.ErrInvalidConfig) || !strings.Contains(err.Error(), fmt.Sprint(n)) {
					t.Errorf("MaxAttempts %d = %v; want an error naming it, matching ErrInvalidConfig", n, err)
				}
				if ran {
					t.Errorf("MaxAttempts %d: fn ran", n)
				}
				if ok, err := c.Has(ctx, "n"); ok || err != nil {
					t.Errorf("MaxAttempts %d: Has = %v, %v; want nothing written", n, ok, err)
				}
			}
			if got, err := cache.ModifyWith(ctx, c, "n", cache.ModifyOptions{}, func(cur int, _ bool) (int, error) { return cur + 1, nil }); got != 1 || err != nil {
				t.Errorf("MaxAttempts 0 (the default) = %v, %v; want 1", got, err)
			}
		})
	}
}

// A list made with a negative TTL fails every call with an error matching ErrInvalidTTL
// and writes nothing. The in-process drivers refused it only when the list was written
// (through Modify), and a native list (Redis) took it as "no expiry"; the check now
// comes before the driver is chosen, so it is the same on every driver.
func TestListRefusesNegativeTTL(t *testing.T) {
	ctx := ctxT(t)
	for name, d := range inputDrivers(t) {
		t.Run(name, func(t *testing.T) {
			c := newCache(t, cache.Config{Drivers: map[string]cache.Driver{name: d}})
			l := cache.NewList[int](c, "l", -time.Second)
			calls := map[string]func() error{
				"Push":    func() error { _, err := l.Push(ctx, 1); return err },
				"Unshift": func() error { _, err := l.Unshift(ctx, 1); return err },
				"Pop":     func() error { _, _, err := l.Pop(ctx); return err },
				"Shift":   func() error { _, _, err := l.Shift(ctx); return err },
				"Slice":   func() error { _, err := l.Slice(ctx, 0, -1); return err },
				"Len":     func() error { _, err := l.Len(ctx); return err },
				"Trim":    func() error { return l.Trim(ctx, 0, -1) },
				"Clear":   func() error { return l.Clear(ctx) },
			}
			for op, call := range calls {
				if err := call(); !errors.Is(err, cache.ErrInvalidTTL) {
					t.Errorf("%s on a list with TTL -1s = %v; want ErrInvalidTTL", op, err)
				}
			}
			if ok, err := c.Has(ctx, "l"); ok || err != nil {
				t.Errorf("Has = %v, %v; want nothing written", ok, err)
			}
			if n, err := cache.NewList[int](c, "l", 0).Push(ctx, 1, 2); n != 2 || err != nil {
				t.Errorf("Push on a list with TTL 0 (the default) = %v, %v", n, err)
			}
		})
	}
}

// Subscribe with a negative buffer size, or a nil fn, installs nothing and panics with
// an error matching ErrInvalidConfig (it returns no error: a negative size is a mistake
// in the code, as for make); 0 keeps its meaning, the default size.
func TestSubscribeRefusesNegativeBuffer(t *testing.T) {
	ctx := ctxT(t)
	c := newCache(t, cache.Config{})
	var got []cache.Event
	for _, tc := range []struct {
		buffer int
		fn     func(cache.Event)
		want   string
	}{
		{-1, func(e cache.Event) { got = append(got, e) }, "-1"},
		{-1 << 40, func(e cache.Event) { got = append(got, e) }, fmt.Sprint(-1 << 40)},
		{0, nil, "fn is nil"},
	} {
		func() {
			defer func() {
				r := recover()
				err, _ := r.(error)
				if !errors.Is(err, cache.ErrInvalidConfig) || !strings.Contains(fmt.Sprint(r), tc.want) {
					t.Errorf("Subscribe(%d, ...) panicked with %v; want an error with %q, matching ErrInvalidConfig", tc.buffer, r, tc.want)
				}
			}()
			stop := c.Subscribe(tc.buffer, tc.fn)
			t.Errorf("Subscribe(%d, ...) returned", tc.buffer)
			stop()
		}()
	}
	var n int
	stop := c.Subscribe(0, func(cache.Event) { n++ })
	if _, err := c.Get(ctx, "k", new(string)); err != nil {
		t.Fatal(err)
	}
	if dropped := stop(); n != 1 || dropped != 0 || len(got) != 0 {
		t.Fatalf("after the refused subscription: the default one saw %d events (dropped %d), the refused one %d; want 1, 0, 0", n, dropped, len(got))
	}
}
