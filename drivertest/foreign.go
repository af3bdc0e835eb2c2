package drivertest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/cachekit/cache"
)

// foreignCases are the promises about foreign data: something under a cache key that
// the cache did not write and cannot read (another program's Redis hash, a named pipe
// where the file driver keeps an entry). They run only with Harness.Plant.
var foreignCases = []testCase{
	{
		name: "ForeignData",
		explanation: "foreign data under a key is an error for every read (Get, Many, Remember, SWR), " +
			"returned before the ctx deadline: never a miss, so no read path writes over it; " +
			"a plain Set either replaces it or fails, never silently keeps it; " +
			"Flush removes every entry of the cache's and returns; Close returns",
		kind: storing,
		f:    testForeignData,
	},
}

// foreignStep is the ctx deadline of each step of the foreign-data case. A step must
// return before it, with an error of its own: a read that blocks until its ctx ends
// fails the case. The deadline is far beyond what a step takes (microseconds to
// milliseconds), so that only such a block reaches it, however busy the machine.
const foreignStep = 30 * time.Second

// bounded runs f with a ctx whose deadline is foreignStep, on a goroutine of its own (f
// reports with t.Errorf, never t.Fatal). It fails the case if f returned only once its
// ctx had ended, failed, or has not returned hangAfter after the deadline (a hang
// detector: the goroutine is then abandoned).
func bounded(t *testing.T, e *env, what string, f func(ctx context.Context)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(e.ctx, foreignStep)
	defer cancel()
	done := make(chan bool, 1) // whether ctx had ended when f returned
	go func() {
		f(ctx)
		done <- ctx.Err() != nil
	}()
	select {
	case ended := <-done:
		if ended {
			t.Fatalf("%s over foreign data returned only when its ctx ended (deadline %v); it must fail at once", what, foreignStep)
		}
	case <-time.After(foreignStep + hangAfter):
		t.Fatalf("%s over foreign data: still running %v after its ctx deadline; it must never block", what, hangAfter)
	}
	if t.Failed() {
		t.FailNow()
	}
}

// foreignErr checks a read of foreign data: an error, and not the ctx's.
func foreignErr(t *testing.T, what string, err error) {
	t.Helper()
	switch {
	case err == nil:
		t.Errorf("%s over foreign data: nil error; want an error (a miss would let the caller overwrite it)", what)
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		t.Errorf("%s over foreign data: %v; want an error about the data, before the ctx deadline", what, err)
	}
}

func testForeignData(t *testing.T, e *env) {
	if e.h.Plant == nil {
		t.Skip("Harness.Plant is nil: the driver cannot hold foreign data")
	}
	final := func(key string) string { return e.prefix + "." + key }
	ours := []string{"a", "b", "c", "ns.d", "ns.e"}
	for _, k := range ours {
		mustSet(t, e, k, "v-"+k, time.Minute)
	}
	e.h.Plant(t, e.d, final("foreign"))

	// Every read path is an error, at once.
	getForeign := func(what string) {
		t.Helper()
		bounded(t, e, what, func(ctx context.Context) {
			var s string
			found, err := e.c.Get(ctx, "foreign", &s)
			if found {
				t.Errorf("%s over foreign data: found %q", what, s)
			}
			foreignErr(t, what, err)
		})
	}
	getForeign("Get")
	for _, keys := range [][]string{{"foreign"}, {"a", "foreign", "missing"}, {"missing", "foreign"}} {
		what := fmt.Sprintf("Many(%q)", keys)
		bounded(t, e, what, func(ctx context.Context) {
			_, err := cache.Many[string](ctx, e.c, keys...)
			foreignErr(t, what, err)
		})
	}
	// A miss stays a miss next to foreign data.
	bounded(t, e, "Many(a, missing)", func(ctx context.Context) {
		got, err := cache.Many[string](ctx, e.c, "a", "missing")
		if err != nil || len(got) != 1 || got["a"] != "v-a" {
			t.Errorf(`Many("a", "missing") = %v, %v; want map[a:v-a], nil`, got, err)
		}
	})
	loaded := false
	load := func(context.Context) (string, error) { loaded = true; return "loaded", nil }
	bounded(t, e, "Remember", func(ctx context.Context) {
		_, err := cache.Remember(ctx, e.c, "foreign", time.Minute, load)
		foreignErr(t, "Remember", err)
	})
	bounded(t, e, "SWR", func(ctx context.Context) {
		_, err := cache.SWR(ctx, e.c, "foreign", cache.SWROptions{Fresh: time.Minute, Stale: 2 * time.Minute}, load)
		foreignErr(t, "SWR", err)
	})
	if loaded {
		t.Fatal("Remember or SWR over foreign data called the loader (and would store its value over the data)")
	}
	// A lock over it is an error that says so, never contention that lasts forever.
	bounded(t, e, "Lock", func(ctx context.Context) {
		out, err := cache.Lock(ctx, e.c, "foreign", time.Minute, func(context.Context) (int, error) { return 1, nil })
		if out.Acquired || !errors.Is(err, cache.ErrNotALock) {
			t.Errorf("Lock over foreign data: acquired %v, err %v; want an error matching cache.ErrNotALock", out.Acquired, err)
		}
	})
	// The reads left it as it was.
	getForeign("Get after the other reads")

	// A plain Set is the caller's explicit write: it may replace the data (then Get reads
	// the new value) or fail (then the data is still there), never report success and
	// keep it.
	e.h.Plant(t, e.d, final("foreign2"))
	bounded(t, e, "Set", func(ctx context.Context) {
		if err := e.c.Set(ctx, "foreign2", "mine", time.Minute); err != nil {
			t.Logf("Set over foreign data: %v (the data stays)", err)
			var s string
			_, err := e.c.Get(ctx, "foreign2", &s)
			foreignErr(t, "Get after a failed Set", err)
			return
		}
		var s string
		found, err := e.c.Get(ctx, "foreign2", &s)
		if !found || err != nil || s != "mine" {
			t.Errorf("Get after Set over foreign data = %q, %v, %v; want mine, true, nil", s, found, err)
		}
	})

	// Flush removes every entry of ours and returns; what it does with the foreign data
	// (leave it and say so, or remove it) is the driver's.
	bounded(t, e, "Flush", func(ctx context.Context) {
		if err := e.c.Flush(ctx); err != nil {
			t.Logf("Flush: %v", err)
		}
	})
	for _, k := range ours {
		var s string
		if found, err := e.c.Get(e.ctx, k, &s); found || err != nil {
			t.Errorf("Get(%q) after Flush = %q, %v, %v; want a miss", k, s, found, err)
		}
	}
	bounded(t, e, "Close", func(context.Context) {
		if err := e.c.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
}
