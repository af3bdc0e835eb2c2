package drivertest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cachekit/cache"
	"github.com/cachekit/cache/driver"
)

// cases is the suite, one promise each.
var cases = []testCase{
	{
		name:        "ImplementsBundles",
		explanation: "every driver implements driver.Atomic and driver.KeySpace (a store that cannot do one of their operations returns errors.ErrUnsupported from it)",
		kind:        any_,
		f: func(t *testing.T, e *env) {
			for _, c := range []capability{atomicOps, keySpace} {
				if !c.has(e.d) {
					t.Errorf("%T does not implement %s", e.d, c.name)
				}
			}
		},
	},
	{
		name:        "Miss",
		explanation: "a missing key is found == false with a nil error, and dst is left alone",
		kind:        any_,
		f: func(t *testing.T, e *env) {
			s := "untouched"
			found, err := e.c.Get(e.ctx, "missing", &s)
			if found || err != nil || s != "untouched" {
				t.Fatalf("Get(missing) = %v, %v, dst %q; want false, nil, dst untouched", found, err, s)
			}
			if ok, err := e.c.Has(e.ctx, "missing"); ok || err != nil {
				t.Fatalf("Has(missing) = %v, %v; want false, nil", ok, err)
			}
		},
	},
	{
		name:        "RoundTrip",
		explanation: "what Set wrote, Get reads back into a variable of the same type",
		f: func(t *testing.T, e *env) {
			roundTrip(t, e, "string", "hello, 世界")
			roundTrip(t, e, "int", 42)
			roundTrip(t, e, "int64", int64(-1)<<40)
			roundTrip(t, e, "float", 3.25)
			roundTrip(t, e, "bool", true)
			roundTrip(t, e, "bytes", []byte{0, 1, 2, 255})
			roundTrip(t, e, "slice", []string{"a", "b"})
			roundTrip(t, e, "map", map[string]int{"a": 1, "b": 2})
			roundTrip(t, e, "struct", user{ID: 7, Name: "Ada", Tags: []string{"x"}, Attrs: map[string]string{"k": "v"}, Admin: true})
			roundTrip(t, e, "ptr", &user{ID: 8, Name: "Bob"})
		},
	},
	{
		name:        "ZeroValuesAreHits",
		explanation: "a stored zero value (0, \"\", false, empty struct) is a hit, not a miss",
		f: func(t *testing.T, e *env) {
			roundTrip(t, e, "zero.int", 0)
			roundTrip(t, e, "zero.string", "")
			roundTrip(t, e, "zero.bool", false)
			roundTrip(t, e, "zero.struct", struct{}{})
			roundTrip(t, e, "zero.user", user{})
			if ok, err := e.c.Has(e.ctx, "zero.int"); !ok || err != nil {
				t.Fatalf("Has(zero.int) = %v, %v; want true, nil", ok, err)
			}
		},
	},
	{
		name:        "Overwrite",
		explanation: "a second Set replaces the value",
		f: func(t *testing.T, e *env) {
			mustSet(t, e, "k", "one", time.Minute)
			mustSet(t, e, "k", "two", time.Minute)
			if got, _ := mustGet[string](t, e, "k"); got != "two" {
				t.Fatalf("Get after overwrite = %q; want %q", got, "two")
			}
		},
	},
	{
		name:        "Remove",
		explanation: "Remove deletes keys; removing a missing key is not an error",
		f: func(t *testing.T, e *env) {
			mustSet(t, e, "a", 1, time.Minute)
			mustSet(t, e, "b", 2, time.Minute)
			if err := e.c.Remove(e.ctx, "a", "b", "never-set"); err != nil {
				t.Fatalf("Remove: %v", err)
			}
			for _, k := range []string{"a", "b"} {
				if _, found := mustGet[int](t, e, k); found {
					t.Fatalf("Get(%q) after Remove: hit", k)
				}
			}
		},
	},
	{
		name:        "TTLExpiry",
		explanation: "a value with a TTL is a hit before the TTL and a miss after it",
		f: func(t *testing.T, e *env) {
			mustSet(t, e, "short", "v", ttlUnit)
			mustSet(t, e, "long", "v", time.Minute)
			if _, found := mustGet[string](t, e, "short"); !found {
				t.Fatal("Get right after Set: miss")
			}
			expires(t, "the short-TTL key never expired", func() bool {
				_, found := mustGet[string](t, e, "short")
				return !found
			})
			if _, found := mustGet[string](t, e, "long"); !found {
				t.Fatal("a key with a 1m TTL expired with the short one")
			}
		},
	},
	{
		name:        "TTLZeroWithoutDefaultNeverExpires",
		explanation: "TTL 0 on a driver with no default TTL means no expiry",
		f: func(t *testing.T, e *env) {
			if dt, ok := e.d.(driver.DefaultTTLer); ok && dt.DefaultTTL() > 0 {
				t.Skipf("the harness's driver has a default TTL of %v", dt.DefaultTTL())
			}
			mustSet(t, e, "k", "v", 0)
			time.Sleep(2 * ttlUnit)
			if _, found := mustGet[string](t, e, "k"); !found {
				t.Fatal("a TTL-0 value expired on a driver without a default TTL")
			}
		},
	},
	{
		name:        "TTLZeroIsDefault",
		explanation: "TTL 0 means the driver's default TTL; Forever ignores it",
		f: func(t *testing.T, e *env) {
			if e.h.NewWithDefaultTTL == nil {
				t.Skip("Harness.NewWithDefaultTTL is not set")
			}
			d := e.h.NewWithDefaultTTL(t, ttlUnit)
			c := newCache(t, d, e.prefix)
			if err := c.Set(e.ctx, "default", "v", 0); err != nil {
				t.Fatal(err)
			}
			if err := c.Forever(e.ctx, "forever", "v"); err != nil {
				t.Fatal(err)
			}
			if err := c.Set(e.ctx, "explicit", "v", time.Minute); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Increment(e.ctx, "counter", 1); err != nil && !errors.Is(err, cache.ErrUnsupported) {
				t.Fatal(err)
			}
			var s string
			expires(t, "a TTL-0 value outlived the default TTL", func() bool {
				found, err := c.Get(e.ctx, "default", &s)
				return err == nil && !found
			})
			expires(t, "a new counter outlived the default TTL", func() bool {
				found, err := c.Has(e.ctx, "counter")
				return err == nil && !found
			})
			for _, k := range []string{"forever", "explicit"} {
				if found, err := c.Get(e.ctx, k, &s); !found || err != nil {
					t.Fatalf("Get(%q) = %v, %v; want a hit: it must not take the default TTL", k, found, err)
				}
			}
		},
	},
	{
		name:        "InvalidInput",
		explanation: "a negative TTL and an empty key are clear errors and write nothing",
		kind:        any_,
		f: func(t *testing.T, e *env) {
			isErr(t, "Set with ttl -1s", e.c.Set(e.ctx, "neg", "v", -time.Second), cache.ErrInvalidTTL)
			_, err := e.c.SetWith(e.ctx, "both", "v", cache.SetOptions{TTL: time.Second, ExpiresAt: time.Now().Add(time.Hour)})
			isErr(t, "SetWith with TTL and ExpiresAt", err, cache.ErrInvalidTTL)
			_, err = e.c.SetWith(e.ctx, "past", "v", cache.SetOptions{ExpiresAt: time.Now().Add(-time.Second)})
			isErr(t, "SetWith with ExpiresAt in the past", err, cache.ErrInvalidTTL)
			isErr(t, "Set with an empty key", e.c.Set(e.ctx, "", "v", time.Minute), cache.ErrInvalidKey)
			var s string
			_, err = e.c.Get(e.ctx, "", &s)
			isErr(t, "Get with an empty key", err, cache.ErrInvalidKey)
			for _, k := range []string{"neg", "both", "past"} {
				if found, _ := e.c.Has(e.ctx, k); found {
					t.Fatalf("a rejected write of %q was stored", k)
				}
			}
		},
	},
	{
		name:        "ExpiresAt",
		explanation: "SetWith ExpiresAt expires the value at that time",
		f: func(t *testing.T, e *env) {
			res, err := e.c.SetWith(e.ctx, "k", "v", cache.SetOptions{ExpiresAt: time.Now().Add(ttlUnit)})
			if err != nil || !res.Written {
				t.Fatalf("SetWith ExpiresAt = %+v, %v", res, err)
			}
			expires(t, "the value outlived its ExpiresAt", func() bool {
				_, found := mustGet[string](t, e, "k")
				return !found
			})
		},
	},
	{
		name:        "Create",
		explanation: "Create writes only when the key is absent or expired",
		needs:       []capability{atomicOps},
		f: func(t *testing.T, e *env) {
			create := func(key, v string, ttl time.Duration) bool {
				t.Helper()
				res, err := e.c.SetWith(e.ctx, key, v, cache.SetOptions{TTL: ttl, OnConflict: cache.Create})
				if err != nil {
					t.Fatalf("Create(%q): %v", key, err)
				}
				return res.Written
			}
			if !create("k", "first", time.Minute) {
				t.Fatal("Create on an absent key did not write")
			}
			if create("k", "second", time.Minute) {
				t.Fatal("Create on a live key wrote")
			}
			if got, _ := mustGet[string](t, e, "k"); got != "first" {
				t.Fatalf("after a refused Create the value is %q; want %q", got, "first")
			}
			create("short", "old", ttlUnit)
			eventually(t, "Create never wrote over an expired key", func() bool { return create("short", "new", time.Minute) })
			if got, _ := mustGet[string](t, e, "short"); got != "new" {
				t.Fatalf("after Create over an expired key the value is %q; want %q", got, "new")
			}
		},
	},
	{
		name:        "CreateAtomic",
		explanation: "of many concurrent Creates of one key, exactly one writes",
		needs:       []capability{atomicOps},
		f: func(t *testing.T, e *env) {
			for round := range 10 {
				key := fmt.Sprintf("race.%d", round)
				var wins atomic.Int64
				parallel(e.n, func(i int) {
					res, err := e.c.SetWith(e.ctx, key, i, cache.SetOptions{TTL: time.Minute, OnConflict: cache.Create})
					if err != nil {
						t.Errorf("Create: %v", err)
					}
					if res.Written {
						wins.Add(1)
					}
				})
				if w := wins.Load(); w != 1 {
					t.Fatalf("round %d: %d of %d concurrent Creates wrote; want exactly 1", round, w, e.n)
				}
			}
		},
	},
	{
		name:        "Update",
		explanation: "Update writes only when the key is present, atomically",
		needs:       []capability{atomicOps},
		f: func(t *testing.T, e *env) {
			update := func(key string, v int) bool {
				res, err := e.c.SetWith(e.ctx, key, v, cache.SetOptions{TTL: time.Minute, OnConflict: cache.Update})
				if err != nil {
					t.Errorf("Update(%q): %v", key, err)
				}
				return res.Written
			}
			var wrote atomic.Int64
			parallel(e.n, func(i int) {
				if update("absent", i) {
					wrote.Add(1)
				}
			})
			if w := wrote.Load(); w != 0 {
				t.Fatalf("%d Updates of an absent key wrote; want 0", w)
			}
			if _, found := mustGet[int](t, e, "absent"); found {
				t.Fatal("Update created an absent key")
			}
			mustSet(t, e, "present", -1, time.Minute)
			parallel(e.n, func(i int) {
				if update("present", i) {
					wrote.Add(1)
				}
			})
			if w := wrote.Load(); w != int64(e.n) {
				t.Fatalf("%d of %d Updates of a present key wrote; want all", w, e.n)
			}
			if got, _ := mustGet[int](t, e, "present"); got < 0 || got >= e.n {
				t.Fatalf("after the Updates the value is %d; want one of the written values", got)
			}
		},
	},
	{
		name:        "Increment",
		explanation: "Increment counts from 0 on a missing key, Decrement goes below 0, a non-integer is ErrNotInteger and stays",
		needs:       []capability{atomicOps},
		f: func(t *testing.T, e *env) {
			steps := []struct {
				op    func(context.Context, string, int64) (int64, error)
				delta int64
				want  int64
			}{
				{e.c.Increment, 5, 5}, {e.c.Increment, 1, 6}, {e.c.Decrement, 10, -4}, {e.c.Increment, 0, -4},
			}
			for _, s := range steps {
				if n, err := s.op(e.ctx, "n", s.delta); n != s.want || err != nil {
					t.Fatalf("counter step %+d = %d, %v; want %d", s.delta, n, err, s.want)
				}
			}
			if got, _ := mustGet[int64](t, e, "n"); got != -4 {
				t.Fatalf("Get(counter) = %d; want -4", got)
			}
			if got, _ := mustGet[int](t, e, "n"); got != -4 {
				t.Fatalf("Get(counter) into an int = %d; want -4", got)
			}
			mustSet(t, e, "set-int", 10, time.Minute)
			if n, err := e.c.Increment(e.ctx, "set-int", 1); n != 11 || err != nil {
				t.Fatalf("Increment of a Set int = %d, %v; want 11", n, err)
			}
			mustSet(t, e, "s", "text", time.Minute)
			_, err := e.c.Increment(e.ctx, "s", 1)
			isErr(t, "Increment of a string", err, cache.ErrNotInteger)
			if got, _ := mustGet[string](t, e, "s"); got != "text" {
				t.Fatalf("a failed Increment changed the value to %q", got)
			}
		},
	},
	{
		name:        "IncrementAtomic",
		explanation: "concurrent Increments lose no update",
		needs:       []capability{atomicOps},
		f: func(t *testing.T, e *env) {
			const per = 50
			parallel(e.n, func(int) {
				for range per {
					if _, err := e.c.Increment(e.ctx, "hits", 1); err != nil {
						t.Errorf("Increment: %v", err)
						return
					}
				}
			})
			if got, _ := mustGet[int64](t, e, "hits"); got != int64(e.n*per) {
				t.Fatalf("after %d×%d concurrent Increments the counter is %d; want %d", e.n, per, got, e.n*per)
			}
		},
	},
	{
		name:        "IncrementKeepsTTL",
		explanation: "Increment keeps the key's remaining TTL: it neither drops nor renews it",
		needs:       []capability{atomicOps},
		f: func(t *testing.T, e *env) {
			keepsTTL(t, e, "Increment", func(key string, n int) bool {
				got, err := e.c.Increment(e.ctx, key, 1)
				if err != nil {
					t.Fatal(err)
				}
				return got == int64(n+2) // from the Set's 1; a new counter: the key had expired
			})
			mustSet(t, e, "forever", 1, 0)
			if _, err := e.c.Increment(e.ctx, "forever", 1); err != nil {
				t.Fatal(err)
			}
			time.Sleep(ttlUnit)
			if n, found := mustGet[int64](t, e, "forever"); !found || n != 2 {
				t.Fatalf("a counter without a TTL = %d, %v after Increment; want 2, true", n, found)
			}
		},
	},
	{
		name:        "PullOnce",
		explanation: "Pull gets and deletes atomically: of many concurrent Pulls, exactly one gets the value",
		needs:       []capability{atomicOps},
		f: func(t *testing.T, e *env) {
			for round := range 5 {
				key := fmt.Sprintf("job.%d", round)
				mustSet(t, e, key, "payload", time.Minute)
				var got atomic.Int64
				parallel(e.n, func(int) {
					var s string
					found, err := e.c.Pull(e.ctx, key, &s)
					if err != nil {
						t.Errorf("Pull: %v", err)
					}
					if found {
						if s != "payload" {
							t.Errorf("Pull gave %q; want %q", s, "payload")
						}
						got.Add(1)
					}
				})
				if n := got.Load(); n != 1 {
					t.Fatalf("round %d: %d of %d concurrent Pulls got the value; want exactly 1", round, n, e.n)
				}
				if _, found := mustGet[string](t, e, key); found {
					t.Fatal("the key is still there after Pull")
				}
			}
		},
	},
	{
		name:        "ManyAndSetMany",
		explanation: "SetMany writes every entry; Many returns the hits by key and leaves misses out",
		f: func(t *testing.T, e *env) {
			in := map[string]any{"m.a": "A", "m.b": "B", "m.c": ""}
			if err := e.c.SetMany(e.ctx, in, time.Minute); err != nil {
				t.Fatal(err)
			}
			got, err := cache.Many[string](e.ctx, e.c, "m.a", "m.missing", "m.b", "m.c")
			if err != nil {
				t.Fatal(err)
			}
			want := map[string]string{"m.a": "A", "m.b": "B", "m.c": ""}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("Many = %v; want %v", got, want)
			}
		},
	},
	{
		name:        "NamespaceDotBoundary",
		explanation: "RemoveNamespace(ns) removes ns and ns.*, never nsX",
		needs:       []capability{keySpace},
		f: func(t *testing.T, e *env) {
			gone := []string{"users", "users.1", "users.1.profile"}
			kept := []string{"usersX", "users_1", "user", "user.1", "x.users", "x.users.1"}
			for _, k := range slices.Concat(gone, kept) {
				mustSet(t, e, k, k, time.Minute)
			}
			if err := e.c.RemoveNamespace(e.ctx, "users"); err != nil {
				t.Fatal(err)
			}
			for _, k := range gone {
				if _, found := mustGet[string](t, e, k); found {
					t.Errorf("%q survived RemoveNamespace(users)", k)
				}
			}
			for _, k := range kept {
				if _, found := mustGet[string](t, e, k); !found {
					t.Errorf("RemoveNamespace(users) removed %q", k)
				}
			}
			// A Namespace view is the same namespace.
			ns := e.c.Namespace("users")
			if err := ns.Set(e.ctx, "2", "two", time.Minute); err != nil {
				t.Fatal(err)
			}
			if got, _ := mustGet[string](t, e, "users.2"); got != "two" {
				t.Fatalf("Namespace(users).Set(2) is not visible as users.2 (got %q)", got)
			}
			if err := ns.Flush(e.ctx); err != nil {
				t.Fatal(err)
			}
			if _, found := mustGet[string](t, e, "users.2"); found {
				t.Fatal("Flush on a Namespace view left users.2")
			}
			if _, found := mustGet[string](t, e, "usersX"); !found {
				t.Fatal("Flush on Namespace(users) removed usersX")
			}
		},
	},
	{
		name:        "PrefixIsolation",
		explanation: "caches with different prefixes never see each other's keys, locks or flushes; with the same prefix they do",
		needs:       []capability{keySpace},
		f: func(t *testing.T, e *env) {
			a := e.c
			b := e.sibling(t, e.prefix+"B")     // a sibling, not a child: "dtxB" is not under "dtx."
			same := e.sibling(t, e.prefix)      // the same prefix
			child := e.sibling(t, e.prefix+".") // trailing dots are trimmed: the same prefix too
			if err := a.Set(e.ctx, "k", "from a", time.Minute); err != nil {
				t.Fatal(err)
			}
			var s string
			if found, _ := b.Get(e.ctx, "k", &s); found {
				t.Fatalf("prefix %q sees prefix %q's key", e.prefix+"B", e.prefix)
			}
			if err := b.Set(e.ctx, "k", "from b", time.Minute); err != nil {
				t.Fatal(err)
			}
			for _, c := range []*cache.Cache{same, child} {
				if found, _ := c.Get(e.ctx, "k", &s); !found || s != "from a" {
					t.Fatalf("a cache with the same prefix reads %q, %v; want %q", s, found, "from a")
				}
			}
			if err := a.Flush(e.ctx); err != nil {
				t.Fatal(err)
			}
			if found, _ := same.Get(e.ctx, "k", &s); found {
				t.Fatal("Flush with a prefix left its own key")
			}
			if found, _ := b.Get(e.ctx, "k", &s); !found || s != "from b" {
				t.Fatalf("Flush of prefix %q removed prefix %q's key", e.prefix, e.prefix+"B")
			}
			_ = b.Remove(e.ctx, "k")
		},
	},
	{
		name:        "PrefixIsolatesLocks",
		explanation: "two caches with different prefixes never block each other's lock on the same key; with the same prefix they do",
		needs:       lockable,
		f: func(t *testing.T, e *env) {
			other := e.sibling(t, e.prefix+"other")
			same := e.sibling(t, e.prefix)
			ok, err := lockOnce(e, e.c, "lock.job", time.Minute, func(ctx context.Context) error {
				okOther, err := lockOnce(e, other, "lock.job", time.Minute, noop)
				if err != nil || !okOther {
					return fmt.Errorf("a cache with another prefix could not lock: %v, %v", okOther, err)
				}
				okSame, err := lockOnce(e, same, "lock.job", time.Minute, noop)
				if err != nil || okSame {
					return fmt.Errorf("a cache with the same prefix took a held lock: %v, %v", okSame, err)
				}
				return nil
			})
			if !ok || err != nil {
				t.Fatalf("Lock = %v, %v", ok, err)
			}
		},
	},
	{
		name:        "LockBasics",
		explanation: "Lock runs fn and returns its value; a held lock is Acquired == false with a nil error; the lock is free after fn returns",
		needs:       lockable,
		f: func(t *testing.T, e *env) {
			out, err := cache.Lock(e.ctx, e.c, "lock.a", time.Minute, func(ctx context.Context) (string, error) {
				inner, err := cache.Lock(ctx, e.c, "lock.a", time.Minute, func(context.Context) (string, error) {
					return "nested ran", nil
				})
				if err != nil || inner.Acquired {
					return "", fmt.Errorf("nested Lock of the same key = %+v, %v; want not acquired, nil (not re-entrant)", inner, err)
				}
				return "done", nil
			})
			if err != nil || !out.Acquired || out.Value != "done" {
				t.Fatalf("Lock = %+v, %v; want {Acquired:true Value:done}, nil", out, err)
			}
			if ok, err := lockOnce(e, e.c, "lock.a", time.Minute, noop); !ok || err != nil {
				t.Fatalf("Lock after release = %v, %v; want acquired", ok, err)
			}
			_, err = cache.Lock(e.ctx, e.c, "lock.a", 0, func(context.Context) (int, error) {
				t.Error("fn ran with TTL 0")
				return 0, nil
			})
			isErr(t, "Lock with TTL 0", err, cache.ErrInvalidTTL)
		},
	},
	{
		name:        "LockOwnerReadable",
		explanation: "while held, Get on the lock key gives a string that starts with the owner label",
		needs:       lockable,
		f: func(t *testing.T, e *env) {
			_, err := cache.LockWith(e.ctx, e.c, "lock.owned", cache.LockOptions{TTL: time.Minute, Owner: "worker.payments-2"},
				func(ctx context.Context) (int, error) {
					s, found := mustGet[string](t, e, "lock.owned")
					if !found || len(s) < len("worker.payments-2") || s[:len("worker.payments-2")] != "worker.payments-2" {
						t.Errorf("Get(lock key) = %q, %v; want a string starting with the owner", s, found)
					}
					return 0, nil
				})
			if err != nil {
				t.Fatal(err)
			}
		},
	},
	{
		name:        "LockReleasesOnErrorAndPanic",
		explanation: "the lock is released when fn returns an error or panics, and the error or panic reaches the caller",
		needs:       lockable,
		f: func(t *testing.T, e *env) {
			ok, err := lockOnce(e, e.c, "lock.err", time.Minute, func(context.Context) error { return errBoom })
			if !ok || !errors.Is(err, errBoom) {
				t.Fatalf("Lock with a failing fn = %v, %v; want acquired and fn's error", ok, err)
			}
			func() {
				defer func() {
					if r := recover(); r != "boom" {
						t.Fatalf("recovered %v; want fn's panic", r)
					}
				}()
				_, _ = lockOnce(e, e.c, "lock.panic", time.Minute, func(context.Context) error { panic("boom") })
			}()
			for _, k := range []string{"lock.err", "lock.panic"} {
				if ok, err := lockOnce(e, e.c, k, time.Minute, noop); !ok || err != nil {
					t.Fatalf("%s still held after fn failed: %v, %v", k, ok, err)
				}
			}
		},
	},
	{
		name:        "LockReleaseOnlyOwn",
		explanation: "if the TTL ran out and another holder took the key, the first holder's release leaves the new lock",
		needs:       lockable,
		f: func(t *testing.T, e *env) {
			aHolds := make(chan struct{})
			bHolds := make(chan struct{})
			aDone := make(chan struct{})
			go func() {
				defer close(aDone)
				_, _ = lockOnce(e, e.c, "lock.x", ttlUnit, func(context.Context) error {
					close(aHolds)
					<-bHolds // A outlives its TTL while B takes the lock
					return nil
				})
			}()
			<-aHolds // A holds the lock before B tries: B can only get it after A's TTL
			var bOK bool
			var berr error
			eventually(t, "B never acquired after A's TTL", func() bool {
				bOK, berr = lockOnce(e, e.c, "lock.x", time.Minute, func(context.Context) error {
					close(bHolds)
					<-aDone // A has released by now
					var s string
					if found, _ := e.c.Get(e.ctx, "lock.x", &s); !found {
						return errors.New("A's release deleted B's lock")
					}
					return nil
				})
				return bOK || berr != nil
			})
			if berr != nil {
				t.Fatal(berr)
			}
		},
	},
	{
		name:        "LockReleasedAfterCancel",
		explanation: "the release runs even when the caller's ctx was cancelled during fn",
		needs:       lockable,
		f: func(t *testing.T, e *env) {
			ctx, cancel := context.WithCancel(e.ctx)
			_, err := cache.Lock(ctx, e.c, "lock.cancel", time.Minute, func(ctx context.Context) (int, error) {
				cancel()
				return 0, ctx.Err()
			})
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("Lock = %v; want fn's context.Canceled", err)
			}
			if ok, err := lockOnce(e, e.c, "lock.cancel", time.Minute, noop); !ok || err != nil {
				t.Fatalf("a lock whose ctx was cancelled during fn is still held: %v, %v", ok, err)
			}
		},
	},
	{
		name:        "LockExclusive",
		explanation: "of many goroutines locking one key, never two run fn at once, and each either runs or gets Acquired == false",
		needs:       lockable,
		f: func(t *testing.T, e *env) {
			var inside, maxInside, ran, skipped atomic.Int64
			parallel(e.n, func(int) {
				for range 5 {
					ok, err := lockOnce(e, e.c, "lock.hot", time.Minute, func(context.Context) error {
						n := inside.Add(1)
						for m := maxInside.Load(); n > m && !maxInside.CompareAndSwap(m, n); m = maxInside.Load() {
						}
						time.Sleep(50 * time.Microsecond)
						inside.Add(-1)
						return nil
					})
					switch {
					case err != nil:
						t.Errorf("Lock: %v", err)
					case ok:
						ran.Add(1)
					default:
						skipped.Add(1)
					}
				}
			})
			if m := maxInside.Load(); m != 1 {
				t.Fatalf("%d holders were inside fn at once; want 1", m)
			}
			if ran.Load() == 0 || ran.Load()+skipped.Load() != int64(e.n*5) {
				t.Fatalf("ran %d + skipped %d != %d attempts", ran.Load(), skipped.Load(), e.n*5)
			}
		},
	},
	{
		name:        "RememberOnce",
		explanation: "Remember runs fn once on a miss for concurrent callers, stores the result, and stores nothing on error",
		f: func(t *testing.T, e *env) {
			var calls atomic.Int64
			release := make(chan struct{})
			results := make(chan int, e.n)
			go func() {
				for calls.Load() == 0 {
					time.Sleep(time.Millisecond)
				}
				time.Sleep(20 * time.Millisecond) // let the others pile up on the flight
				close(release)
			}()
			parallel(e.n, func(int) {
				v, err := cache.Remember(e.ctx, e.c, "r", time.Minute, func(context.Context) (int, error) {
					calls.Add(1)
					<-release
					return 42, nil
				})
				if err != nil {
					t.Errorf("Remember: %v", err)
				}
				results <- v
			})
			close(results)
			for v := range results {
				if v != 42 {
					t.Fatalf("Remember gave %d; want 42", v)
				}
			}
			if n := calls.Load(); n != 1 {
				t.Fatalf("fn ran %d times for %d concurrent callers; want 1", n, e.n)
			}
			if got, _ := mustGet[int](t, e, "r"); got != 42 {
				t.Fatalf("Remember stored %d; want 42", got)
			}
			_, err := cache.Remember(e.ctx, e.c, "bad", time.Minute, func(context.Context) (int, error) { return 0, errBoom })
			isErr(t, "Remember with a failing fn", err, errBoom)
			if _, found := mustGet[int](t, e, "bad"); found {
				t.Fatal("Remember stored a value after fn failed")
			}
		},
	},
	{
		name:        "UseAfterClose",
		explanation: "after Close every operation returns an error matching ErrClosed",
		kind:        any_,
		f: func(t *testing.T, e *env) {
			if err := e.c.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			if err := e.c.Close(); err != nil {
				t.Fatalf("a second Close: %v", err)
			}
			var s string
			_, err := e.c.Get(e.ctx, "k", &s)
			isErr(t, "cache Get after Close", err, cache.ErrClosed)
			isErr(t, "cache Set after Close", e.c.Set(e.ctx, "k", "v", time.Minute), cache.ErrClosed)
			_, err = lockOnce(e, e.c, "lock", time.Minute, noop)
			isErr(t, "Lock after Close", err, cache.ErrClosed)
			// The driver itself, called directly.
			_, _, err = e.d.Get(e.ctx, e.prefix+".k")
			isErr(t, "driver Get after Close", err, driver.ErrClosed)
			isErr(t, "driver Set after Close", e.d.Set(e.ctx, driver.Entry{Key: e.prefix + ".k", Value: []byte("1")}), driver.ErrClosed)
			isErr(t, "driver Delete after Close", e.d.Delete(e.ctx, e.prefix+".k"), driver.ErrClosed)
			if c, ok := e.d.(driver.Atomic); ok {
				_, err := c.SetIf(e.ctx, driver.Entry{Key: e.prefix + ".k", Value: []byte("1")}, driver.IfAbsent)
				isErr(t, "driver SetIf after Close", err, driver.ErrClosed)
			}
		},
	},
	{
		name:        "MissingCapabilityFailsLoudly",
		explanation: "an operation whose capability the driver lacks returns ErrUnsupported, never a silent emulation",
		kind:        any_,
		f: func(t *testing.T, e *env) {
			c2, err := cache.New(cache.Config{Drivers: map[string]cache.Driver{"bare": bareDriver{e.d}}})
			if err != nil {
				t.Fatal(err)
			}
			_, err = c2.SetWith(e.ctx, "k", "v", cache.SetOptions{OnConflict: cache.Create})
			isErr(t, "Create without driver.Atomic", err, cache.ErrUnsupported)
			_, err = lockOnce(e, c2, "lock", time.Minute, noop)
			isErr(t, "Lock without driver.Atomic", err, cache.ErrUnsupported)
			_, err = c2.Increment(e.ctx, "n", 1)
			isErr(t, "Increment without driver.Atomic", err, cache.ErrUnsupported)
			var s string
			_, err = c2.Pull(e.ctx, "k", &s)
			isErr(t, "Pull without driver.Atomic", err, cache.ErrUnsupported)
			isErr(t, "Flush without driver.KeySpace", c2.Flush(e.ctx), cache.ErrUnsupported)
		},
	},
	{
		name:        "NullStoresNothing",
		explanation: "a driver that stores nothing: reads miss, Remember always runs fn, locks always acquire, Increment returns the delta",
		kind:        null,
		f: func(t *testing.T, e *env) {
			mustSet(t, e, "k", "v", time.Minute)
			if _, found := mustGet[string](t, e, "k"); found {
				t.Fatal("Get hit on a driver that stores nothing")
			}
			var calls int
			for range 3 {
				if _, err := cache.Remember(e.ctx, e.c, "r", time.Minute, func(context.Context) (int, error) {
					calls++
					return 1, nil
				}); err != nil {
					t.Fatal(err)
				}
			}
			if calls != 3 {
				t.Fatalf("Remember ran fn %d times in 3 calls; want 3", calls)
			}
			ok, err := lockOnce(e, e.c, "lock", time.Minute, func(context.Context) error {
				inner, err := lockOnce(e, e.c, "lock", time.Minute, noop)
				if !inner || err != nil {
					return fmt.Errorf("nested lock = %v, %v; want acquired: the null driver always acquires", inner, err)
				}
				return nil
			})
			if !ok || err != nil {
				t.Fatalf("Lock = %v, %v", ok, err)
			}
			if n, err := e.c.Increment(e.ctx, "n", 5); n != 5 || err != nil {
				t.Fatalf("Increment = %d, %v; want 5", n, err)
			}
		},
	},
}

// bareDriver hides every capability of a driver beyond driver.Driver, the bundles
// included.
type bareDriver struct{ d driver.Driver }

func (b bareDriver) Get(ctx context.Context, key string) (any, bool, error) { return b.d.Get(ctx, key) }
func (b bareDriver) Set(ctx context.Context, e driver.Entry) error          { return b.d.Set(ctx, e) }
func (b bareDriver) Delete(ctx context.Context, keys ...string) error {
	return b.d.Delete(ctx, keys...)
}
func (bareDriver) Close() error { return nil }

// keepsTTL checks that touch (an Increment, a Modify) keeps the remaining TTL of the key
// it is given: neither drops it nor renews it. Two keys get the same TTL, "kept" and then
// "twin", so that kept expires no later than twin; touch(kept, n) runs on kept only
// (n = 0, 1, ...), a few times over half the TTL, and reports whether it found the key
// still there. Then no timing decides:
//   - with a driver.TTLReader, twin's remaining TTL is read, then kept's: kept's cannot
//     be longer if its TTL was kept (a renewal makes it longer by about the time from the
//     Set to the last touch), and cannot be 0 (no expiry: a dropped TTL);
//   - kept must expire (a dropped TTL never does), no later than twin: once twin is seen
//     gone, kept is gone too.
//
// A key that expired before the touches were done (a busy machine) makes the attempt
// inconclusive, and it runs again with a longer TTL.
func keepsTTL(t *testing.T, e *env, what string, touch func(key string, n int) (alive bool)) {
	t.Helper()
	withLongerTTLs(t, 2*ttlUnit, func(ttl time.Duration) string {
		kept, twin := fmt.Sprintf("kept.%v", ttl), fmt.Sprintf("twin.%v", ttl)
		mustSet(t, e, kept, 1, ttl)
		mustSet(t, e, twin, 1, ttl)
		set := time.Now()
		for n := 0; n < 3 || time.Since(set) < ttl/2; n++ {
			began := time.Since(set)
			if !touch(kept, n) {
				_ = e.c.Remove(e.ctx, kept, twin) // touch may have made it again, without the TTL
				return fmt.Sprintf("the key expired before %s %d (called %v after the Set, returned %v after it)", what, n+1, began, time.Since(set))
			}
			time.Sleep(ttl / 10)
		}
		if tr, ok := e.d.(driver.TTLReader); ok {
			twinTTL, twinFound, err := tr.TTL(e.ctx, e.prefix+"."+twin)
			if err != nil {
				t.Fatal(err)
			}
			keptTTL, keptFound, err := tr.TTL(e.ctx, e.prefix+"."+kept)
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case keptFound && keptTTL == 0:
				t.Fatalf("%s dropped the key's TTL: the driver reports no expiry", what)
			case keptFound && twinFound && keptTTL > twinTTL:
				t.Fatalf("%s renewed the key's TTL: %v left, read after its twin's %v; the twin was Set after it with the same TTL", what, keptTTL, twinTTL)
			}
		}
		// twin is first read once its TTL has passed since the Set (none of kept's reads
		// comes before: a read slides a key on some drivers); later reads come a TTL
		// apart, for the same reason.
		time.Sleep(time.Until(set.Add(ttl)))
		expiresAfter(t, ttl, "the twin key never expired", func() bool {
			found, err := e.c.Has(e.ctx, twin)
			return err == nil && !found
		})
		if found, err := e.c.Has(e.ctx, kept); err != nil || found {
			t.Fatalf("after %s the key outlived its twin, which was Set after it with the same TTL: %s dropped or renewed its TTL (Has = %v, %v)", what, what, found, err)
		}
		return ""
	})
}
