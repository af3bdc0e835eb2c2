// Package drivertest is the conformance suite for cache drivers: the promises of the
// cache package that depend on a driver, in executable form. Every driver, ours and
// third-party, runs it from a ten-line test:
//
//	func TestConformance(t *testing.T) {
//		drivertest.Run(t, func(t *testing.T) driver.Driver {
//			d, err := mydriver.New(mydriver.Options{})
//			if err != nil {
//				t.Fatal(err)
//			}
//			return d
//		})
//	}
//
// Each case runs as its own subtest on a fresh driver, through a [cache.Cache] whose
// keys live under a random prefix, so drivers over a shared store (one Redis database)
// do not see each other's cases. Every driver implements the bundles [driver.Atomic] and
// [driver.KeySpace] (case ImplementsBundles); a case that needs an optional capability
// the driver lacks skips with the reason; a driver that implements a capability must
// pass its cases.
// Run the suite with -race: the concurrency cases may miss a race without it.
//
// The suite asserts no latency: a driver that passes it on a busy machine passes it on a
// quiet one, and the other way round. Where a promise is about when something happens,
// a case checks the order of instants of the same run (fn's ctx did not end before the
// lease did), counts (the waiter was woken by the release, not by its poll), or the
// outcome of a wait that only a hang can exhaust (see hangAfter). How fast a driver is
// is measured by the benchmarks of the bench module (docs/benchmarks.md).
package drivertest

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cachekit/cache"
	"github.com/cachekit/cache/driver"
)

// Harness tells the suite how to make drivers.
type Harness struct {
	// New returns a fresh driver with no default TTL. Required. Register cleanup with
	// t.Cleanup; the suite also closes the driver when the case ends.
	New func(t *testing.T) driver.Driver
	// NewWithDefaultTTL returns a fresh driver whose default TTL is ttl. Optional: without
	// it the default-TTL cases skip.
	NewWithDefaultTTL func(t *testing.T, ttl time.Duration) driver.Driver
	// StoresNothing is set for drivers that store nothing by design (the null driver):
	// the storage cases skip, and the null promises are checked instead (every read
	// misses, every lock acquires, Increment returns the delta).
	StoresNothing bool
	// Concurrency is the number of goroutines in the concurrency cases. Default: 64.
	Concurrency int
	// Plant puts foreign data under key, a final key (prefix + "." + key): data that the
	// cache did not write and cannot read, as another program would leave it (a Redis
	// hash; a named pipe where the file driver keeps an entry). Optional: nil for a
	// driver that cannot hold foreign data, and the foreign-data case skips.
	Plant func(t *testing.T, d driver.Driver, key string)
}

// Run runs the suite on drivers made by newDriver.
func Run(t *testing.T, newDriver func(t *testing.T) driver.Driver) {
	RunWith(t, Harness{New: newDriver})
}

// ttlUnit is the TTL the expiry cases use: short, for a fast suite. No case fails
// because a call took longer than some part of it: a case whose key expired before it
// was done with it (a busy machine) runs again with a TTL twice as long (withLongerTTLs).
const ttlUnit = 150 * time.Millisecond

// hangAfter is how long the suite waits for something that a working driver does in
// microseconds to milliseconds (a handoff, an expiry that is due, a release's
// notification): a hang detector, not a latency bound, long enough that only a hang
// reaches it on however busy a machine.
const hangAfter = time.Minute

type kind uint8

const (
	storing kind = iota // needs a driver that stores: skipped with StoresNothing
	any_                // every driver
	null                // only drivers that store nothing
)

type testCase struct {
	name string
	// explanation is the promise, as a sentence.
	explanation string
	// needs lists the capabilities the case needs.
	needs []capability
	kind  kind
	f     func(t *testing.T, e *env)
}

// RunWith runs the suite with the harness h.
func RunWith(t *testing.T, h Harness) {
	if h.New == nil {
		t.Fatal("drivertest: Harness.New is nil")
	}
	if h.Concurrency <= 0 {
		h.Concurrency = 64
	}
	for _, tc := range slices.Concat(cases, lockCases, modifyCases, scanCases, expiryCases, maxTTLCases, foreignCases) {
		t.Run(tc.name, func(t *testing.T) {
			switch {
			case tc.kind == storing && h.StoresNothing:
				t.Skip("the driver stores nothing by design")
			case tc.kind == null && !h.StoresNothing:
				t.Skip("a promise of drivers that store nothing")
			}
			t.Cleanup(func() {
				if t.Failed() {
					t.Logf("the promise this case checks: %s", tc.explanation)
				}
			})
			e := newEnv(t, h, h.New(t))
			for _, c := range tc.needs {
				if !c.has(e.d) {
					t.Skipf("%T does not implement %s", e.d, c.name)
				}
			}
			tc.f(t, e)
		})
	}
}

// env is one case's driver and a cache over it.
type env struct {
	h      Harness
	d      driver.Driver
	c      *cache.Cache
	prefix string
	ctx    context.Context
	n      int // Harness.Concurrency
}

func newEnv(t *testing.T, h Harness, d driver.Driver) *env {
	t.Helper()
	if d == nil {
		t.Fatal("drivertest: the harness returned a nil driver")
	}
	prefix := "dt" + rand.Text()[:10]
	c := newCache(t, d, prefix)
	// Leave nothing behind on a shared store: the case's keys, counters and fence
	// records all live under its prefix. (Cleanups run last-in first-out: this runs
	// before the cache is closed; after a case that closed it, it does nothing.)
	t.Cleanup(func() {
		if keySpace.has(d) {
			_ = c.Flush(context.Background())
		}
	})
	// A case's calls end with its ctx: a hang detector for the whole case, beyond
	// the retries of withLongerTTLs.
	ctx, cancel := context.WithTimeout(context.Background(), 5*hangAfter)
	t.Cleanup(cancel)
	return &env{h: h, d: d, c: c, prefix: prefix, ctx: ctx, n: h.Concurrency}
}

// newCache makes a cache over d with the prefix; closing it is the case's cleanup.
func newCache(t *testing.T, d driver.Driver, prefix string) *cache.Cache {
	t.Helper()
	c, err := cache.New(cache.Config{Drivers: map[string]cache.Driver{"d": d}, Prefix: prefix})
	if err != nil {
		t.Fatalf("cache.New: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// sibling returns another cache over the same driver with another prefix. It is never
// closed: closing it would close the shared driver.
func (e *env) sibling(t *testing.T, prefix string) *cache.Cache {
	t.Helper()
	c, err := cache.New(cache.Config{Drivers: map[string]cache.Driver{"d": e.d}, Prefix: prefix})
	if err != nil {
		t.Fatalf("cache.New: %v", err)
	}
	return c
}

type capability struct {
	name string
	has  func(driver.Driver) bool
}

func capOf[T any](name string) capability {
	return capability{name, func(d driver.Driver) bool { _, ok := d.(T); return ok }}
}

var (
	atomicOps = capOf[driver.Atomic]("driver.Atomic")
	keySpace  = capOf[driver.KeySpace]("driver.KeySpace")
	lockable  = []capability{atomicOps}
	// watcher is a driver.Atomic whose Watch is not unsupported: asked with a context
	// that has ended, so that it holds nothing.
	watcher = capability{"a supported driver.Atomic Watch", func(d driver.Driver) bool {
		a, ok := d.(driver.Atomic)
		if !ok {
			return false
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := a.Watch(ctx, "drivertest.watch")
		return !errors.Is(err, errors.ErrUnsupported)
	}}
)

// eventually polls cond every 10 ms until it holds, and fails after hangAfter (a hang
// detector).
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > hangAfter {
			t.Fatalf("still not so after %v (a hang): %s", hangAfter, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// expires polls cond until it holds, sleeping longer than ttlUnit between polls, and
// fails after hangAfter (a hang detector).
func expires(t *testing.T, what string, cond func() bool) {
	t.Helper()
	time.Sleep(ttlUnit)
	expiresAfter(t, ttlUnit, what, cond)
}

// expiresAfter is expires for keys whose TTL is ttl: on a driver with sliding expiry
// every read pushes the expiry back by the TTL, so a poll faster than the TTL would keep
// the value alive forever. It polls first after 25 ms, then every ttl + 25 ms.
func expiresAfter(t *testing.T, ttl time.Duration, what string, cond func() bool) {
	t.Helper()
	start := time.Now()
	for wait := 25 * time.Millisecond; ; wait = ttl + 25*time.Millisecond {
		time.Sleep(wait)
		if cond() {
			return
		}
		if time.Since(start) > hangAfter {
			t.Fatalf("still not so after %v (a hang): %s", hangAfter, what)
		}
	}
}

// withLongerTTLs runs attempt with ttl, then, as long as attempt finds its run
// inconclusive, again with a TTL twice as long, up to 16 × ttl. A TTL is a real-time
// promise: a key can expire, and a lock's holder starved of CPU for part of its TTL can
// lose its lease, before a busy machine has let the case do what it meant to do inside
// the TTL. attempt reports such a run as inconclusive, with what it saw (logged); a
// working driver passes at some TTL, a broken one fails at every one. attempt fails the
// case itself on a broken promise.
func withLongerTTLs(t *testing.T, ttl time.Duration, attempt func(ttl time.Duration) (inconclusive string)) {
	t.Helper()
	for i := 0; ; i++ {
		why := attempt(ttl)
		switch {
		case t.Failed():
			t.FailNow()
		case why == "":
			return
		case i == 4:
			t.Fatalf("TTL %v: %s; inconclusive at every TTL up to this one: the promise does not hold", ttl, why)
		}
		t.Logf("TTL %v: %s; inconclusive (a busy machine?): again with a TTL of %v", ttl, why, 2*ttl)
		ttl *= 2
	}
}

// parallel runs f(i) on n goroutines started together.
func parallel(n int, f func(i int)) {
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			f(i)
		})
	}
	close(start)
	wg.Wait()
}

func mustGet[T any](t *testing.T, e *env, key string) (T, bool) {
	t.Helper()
	var v T
	found, err := e.c.Get(e.ctx, key, &v)
	if err != nil {
		t.Fatalf("Get(%q) error: %v", key, err)
	}
	return v, found
}

func mustSet(t *testing.T, e *env, key string, v any, ttl time.Duration) {
	t.Helper()
	if err := e.c.Set(e.ctx, key, v, ttl); err != nil {
		t.Fatalf("Set(%q) error: %v", key, err)
	}
}

type user struct {
	ID    int               `json:"id"`
	Name  string            `json:"name"`
	Tags  []string          `json:"tags"`
	Attrs map[string]string `json:"attrs"`
	Admin bool              `json:"admin"`
}

// roundTrip sets v and reads it back into a fresh T.
func roundTrip[T any](t *testing.T, e *env, key string, v T) {
	t.Helper()
	mustSet(t, e, key, v, time.Minute)
	got, found := mustGet[T](t, e, key)
	if !found {
		t.Fatalf("Get(%q) after Set(%#v): miss; a stored value (zero values too) must be a hit", key, v)
	}
	if !reflect.DeepEqual(got, v) {
		t.Fatalf("Get(%q) = %#v; want %#v", key, got, v)
	}
}

func isErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: error %v; want one matching %v", what, err, target)
	}
}

func lockOnce(e *env, c *cache.Cache, key string, ttl time.Duration, fn func(context.Context) error) (bool, error) {
	out, err := cache.Lock(e.ctx, c, key, ttl, func(ctx context.Context) (struct{}, error) {
		return struct{}{}, fn(ctx)
	})
	return out.Acquired, err
}

func noop(context.Context) error { return nil }

var errBoom = fmt.Errorf("drivertest: fn failed on purpose")
