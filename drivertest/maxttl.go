package drivertest

import (
	"context"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/cachekit/cache"
	"github.com/cachekit/cache/driver"
)

var ttlReader = capOf[driver.TTLReader]("driver.TTLReader")

// maxTTLCases are the promises about TTLs too long to matter.
var maxTTLCases = []testCase{
	{
		name:        "MaxTTL",
		explanation: "a TTL up to math.MaxInt64 (what callers write for forever, or a config value such as \"106751d\") is stored as driver.MaxTTL: the value is a hit, a lock taken with it is held, a counter created with it counts, a tagged value is invalidated, and a TTL reader reports a TTL in (0, MaxTTL]",
		kind:        any_,
		f: func(t *testing.T, e *env) {
			parsed, err := cache.ParseDuration("106751d")
			if err != nil {
				t.Fatalf("ParseDuration(106751d): %v", err)
			}
			for _, tc := range []struct {
				name string
				ttl  time.Duration
			}{
				{"MaxInt64", math.MaxInt64},
				{"2^62ns", time.Duration(1 << 62)},
				{"106751d", parsed},
			} {
				t.Run(tc.name, func(t *testing.T) { maxTTL(t, e, tc.ttl) })
			}
		},
	},
}

// maxTTL checks the promises of MaxTTL for one TTL longer than MaxTTL.
func maxTTL(t *testing.T, e *env, ttl time.Duration) {
	stores := !e.h.StoresNothing
	// wantTTL checks a TTL a lock handle or InspectLock reported for a lock taken with ttl.
	wantTTL := func(what string, got time.Duration) {
		t.Helper()
		if !ttlReader.has(e.d) {
			if got != -1 {
				t.Errorf("%s = %v; want -1 (unknown) from a driver without driver.TTLReader", what, got)
			}
			return
		}
		if got <= 0 || got > driver.MaxTTL {
			t.Errorf("%s = %v; want one in (0, driver.MaxTTL = %v]", what, got, driver.MaxTTL)
		}
	}

	if stores {
		mustSet(t, e, "max.set", "v", ttl)
		if got, found := mustGet[string](t, e, "max.set"); !found || got != "v" {
			t.Errorf("Get after Set with TTL %v = %q, %v; want a hit", ttl, got, found)
		}
		if ok, err := e.c.Has(e.ctx, "max.set"); !ok || err != nil {
			t.Errorf("Has after Set with TTL %v = %v, %v; want true, nil", ttl, ok, err)
		}
		if _, err := e.c.SetWith(e.ctx, "max.at", "v", cache.SetOptions{ExpiresAt: time.Now().Add(ttl)}); err != nil {
			t.Fatalf("SetWith ExpiresAt now + %v: %v", ttl, err)
		}
		if _, found := mustGet[string](t, e, "max.at"); !found {
			t.Errorf("Get after SetWith ExpiresAt now + %v: miss; want a hit", ttl)
		}
		if err := e.c.SetMany(e.ctx, map[string]any{"max.many": 1}, ttl); err != nil {
			t.Fatalf("SetMany with TTL %v: %v", ttl, err)
		}
		if _, found := mustGet[int](t, e, "max.many"); !found {
			t.Errorf("Get after SetMany with TTL %v: miss; want a hit", ttl)
		}

		if _, err := cache.Remember(e.ctx, e.c, "max.remember", ttl, func(context.Context) (int, error) { return 1, nil }); err != nil {
			t.Fatalf("Remember with TTL %v: %v", ttl, err)
		}
		if _, found := mustGet[int](t, e, "max.remember"); !found {
			t.Errorf("Get after Remember with TTL %v: miss; want a hit", ttl)
		}
		_, err := cache.ModifyWith(e.ctx, e.c, "max.modify", cache.ModifyOptions{TTL: ttl}, func(n int, _ bool) (int, error) { return n + 1, nil })
		switch {
		case errors.Is(err, cache.ErrUnsupported):
		case err != nil:
			t.Fatalf("ModifyWith TTL %v: %v", ttl, err)
		default:
			if _, found := mustGet[int](t, e, "max.modify"); !found {
				t.Errorf("Get after ModifyWith TTL %v: miss; want a hit", ttl)
			}
		}

		// Two tagged writes: the second one drops the entries of the tag's index that it
		// takes for expired, which must not include the first.
		for _, k := range []string{"max.tagged1", "max.tagged2"} {
			if _, err := e.c.SetWith(e.ctx, k, "v", cache.SetOptions{TTL: ttl, Tags: []string{"max"}}); err != nil {
				t.Fatalf("SetWith(%q) with TTL %v and a tag: %v", k, ttl, err)
			}
		}
		if err := e.c.InvalidateTags(e.ctx, "max"); err != nil {
			t.Fatalf("InvalidateTags: %v", err)
		}
		for _, k := range []string{"max.tagged1", "max.tagged2"} {
			if _, found := mustGet[string](t, e, k); found {
				t.Errorf("Get(%q) after InvalidateTags: hit; a value tagged with TTL %v must be invalidated", k, ttl)
			}
		}
	}

	if atomicOps.has(e.d) {
		h, err := cache.Acquire(e.ctx, e.c, "max.lock", cache.LockOptions{TTL: ttl})
		if err != nil {
			t.Fatalf("Acquire with TTL %v: %v", ttl, err)
		}
		if stores {
			if h2, err := cache.Acquire(e.ctx, e.c, "max.lock", cache.LockOptions{TTL: ttl}); !errors.Is(err, cache.ErrNotAcquired) {
				_ = h2.Release(e.ctx)
				t.Errorf("second Acquire of a lock held with TTL %v: error %v; want ErrNotAcquired", ttl, err)
			}
			got, err := h.TTL(e.ctx)
			if err != nil {
				t.Fatalf("LockHandle.TTL: %v", err)
			}
			wantTTL("LockHandle.TTL", got)
			info, err := cache.InspectLock(e.ctx, e.c, "max.lock")
			if err != nil || !info.Held {
				t.Fatalf("InspectLock = %+v, %v; want held", info, err)
			}
			wantTTL("InspectLock TTL", info.TTL)
		}
		if atomicOps.has(e.d) {
			if err := h.Extend(e.ctx, ttl); err != nil {
				t.Fatalf("Extend with TTL %v: %v", ttl, err)
			}
			if stores {
				if h2, err := cache.Acquire(e.ctx, e.c, "max.lock", cache.LockOptions{TTL: ttl}); !errors.Is(err, cache.ErrNotAcquired) {
					_ = h2.Release(e.ctx)
					t.Errorf("Acquire of a lock extended with TTL %v: error %v; want ErrNotAcquired", ttl, err)
				}
				got, err := h.TTL(e.ctx)
				if err != nil {
					t.Fatalf("LockHandle.TTL after Extend: %v", err)
				}
				wantTTL("LockHandle.TTL after Extend", got)
			}
		}
		if err := h.Release(e.ctx); err != nil {
			t.Fatalf("Release: %v", err)
		}
		h, err = cache.Acquire(e.ctx, e.c, "max.lock", cache.LockOptions{TTL: time.Minute})
		if err != nil {
			t.Fatalf("Acquire after Release: %v", err)
		}
		if err := h.Release(e.ctx); err != nil {
			t.Fatalf("Release: %v", err)
		}
	}

	// A counter's TTL, when Increment creates it, is the driver's default TTL.
	if atomicOps.has(e.d) && e.h.NewWithDefaultTTL != nil {
		de := newEnv(t, e.h, e.h.NewWithDefaultTTL(t, ttl))
		want := []int64{5, 7}
		if !stores {
			want = []int64{5, 2} // the null driver returns the delta
		}
		for i, delta := range []int64{5, 2} {
			n, err := de.c.Increment(de.ctx, "max.counter", delta)
			if err != nil || n != want[i] {
				t.Fatalf("Increment #%d with a default TTL of %v = %d, %v; want %d, nil", i+1, ttl, n, err, want[i])
			}
		}
		if stores {
			mustSet(t, de, "max.default", "v", 0)
			if _, found := mustGet[string](t, de, "max.default"); !found {
				t.Errorf("Get after Set with a default TTL of %v: miss; want a hit", ttl)
			}
		}
	}
}
