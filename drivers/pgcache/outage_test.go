package pgcache_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/cachekit/cache"
	"github.com/cachekit/cache/driver"
	"github.com/cachekit/cache/drivers/pgcache"
	"github.com/cachekit/cache/internal/testkit/faultproxy"
	"github.com/cachekit/cache/internal/testkit/pgtest"
)

// ops are the driver's calls whose failure a lock or a read could mistake for an answer:
// each returns (answer, error), and must return an error when the database cannot be
// reached, never a plain false or a miss.
func ops(d *pgcache.Driver, key string) map[string]func(ctx context.Context) (bool, error) {
	v := []byte(`"v"`)
	return map[string]func(ctx context.Context) (bool, error){
		"Get": func(ctx context.Context) (bool, error) { _, ok, err := d.Get(ctx, key); return ok, err },
		"SetIf IfAbsent": func(ctx context.Context) (bool, error) {
			return d.SetIf(ctx, driver.Entry{Key: key + ".new", Value: v, TTL: time.Minute}, driver.IfAbsent)
		},
		"CreateFenced": func(ctx context.Context) (bool, error) {
			_, ok, err := d.CreateFenced(ctx, driver.Entry{Key: key + ".fenced", Value: v, TTL: time.Minute})
			return ok, err
		},
		"CompareAndDelete": func(ctx context.Context) (bool, error) { return d.CompareAndDelete(ctx, key, v) },
		"Extend":           func(ctx context.Context) (bool, error) { return d.Extend(ctx, key, v, time.Minute) },
		"TTL":              func(ctx context.Context) (bool, error) { _, ok, err := d.TTL(ctx, key); return ok, err },
		"Increment": func(ctx context.Context) (bool, error) {
			_, err := d.Increment(ctx, key+".n", 1, 0)
			return false, err
		},
	}
}

// hangAfter bounds waits for things that take milliseconds or seconds: a hang detector,
// never a latency bound.
const hangAfter = time.Minute

// checkFails runs every op with a ctx of deadline dl: each must fail (an error, and a
// false answer) and return: on a frozen link only the deadline can end it, so a return
// before the hang detector shows the deadline is honoured. How long each took is
// logged, not asserted.
func checkFails(t *testing.T, what string, d *pgcache.Driver, key string, dl time.Duration) {
	t.Helper()
	for name, op := range ops(d, key) {
		ctx, cancel := context.WithTimeout(bg, dl)
		start := time.Now()
		ok, err := op(ctx)
		took := time.Since(start)
		cancel()
		if err == nil || ok {
			t.Errorf("%s: %s = %v, %v; want an error (never an answer)", what, name, ok, err)
		}
		if took > hangAfter {
			t.Errorf("%s: %s took %v; want an error at the deadline (%v)", what, name, took, dl)
		}
		t.Logf("%s: %s failed in %v: %v", what, name, took.Round(100*time.Microsecond), err)
	}
}

// recovered waits until every op (on key: they write it) answers again (the pool drops the connections the
// outage broke, one failed statement each, and dials new ones).
func recovered(t *testing.T, d *pgcache.Driver, key string) {
	t.Helper()
	deadline := time.Now().Add(hangAfter)
	for name, op := range ops(d, key) {
		for {
			ctx, cancel := context.WithTimeout(bg, 2*time.Second)
			_, err := op(ctx)
			cancel()
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s still fails %v after the database came back: %v", name, hangAfter, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// TestServerCrash: the server is killed (an immediate shutdown, as a crash) while a lock
// is held and watched. The watch is woken; every operation fails at once with an error,
// never "held by someone" or a miss; a Watch fails too. After a restart on the
// same port the pool and the listening connection come back by themselves, the logged
// table kept its rows (the lock is still held), and a release wakes a new watch.
func TestServerCrash(t *testing.T) {
	s := pgtest.Start(t)
	d := newDriver(t, pgcache.Options{URL: s.URL()})
	key := "crash.lock"
	if ok, err := d.SetIf(bg, driver.Entry{Key: key, Value: []byte(`"v"`), TTL: time.Hour}, driver.IfAbsent); !ok || err != nil {
		t.Fatal(ok, err)
	}
	woke, err := d.Watch(bg, key)
	if err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	s.Stop()
	select {
	case <-woke:
		t.Logf("the watch woke %v after the crash", time.Since(stopped).Round(100*time.Microsecond))
	case <-time.After(hangAfter): // a hang detector
		t.Fatal("the watch was not woken when its connection dropped")
	}
	checkFails(t, "server down", d, "crash.ops", 2*time.Second)
	start := time.Now()
	if _, err := d.Watch(bg, key); err == nil || time.Since(start) > hangAfter {
		t.Fatalf("Watch with the server down = %v after %v; want an error", err, time.Since(start))
	}
	t.Logf("Watch with the server down failed after %v", time.Since(start).Round(time.Millisecond))

	s.Restart(t)
	recovered(t, d, "crash.ops")
	if ok, err := d.SetIf(bg, driver.Entry{Key: key, Value: []byte(`"w"`), TTL: time.Hour}, driver.IfAbsent); ok || err != nil {
		t.Fatalf("create over the lock kept by the crash = %v, %v; want false (still held)", ok, err)
	}
	var ch <-chan struct{}
	deadline := time.Now().Add(hangAfter)
	for ch == nil {
		if ch, err = d.Watch(bg, key); err != nil && time.Now().After(deadline) {
			t.Fatalf("Watch %v after the restart: %v", hangAfter, err)
		}
	}
	other := newDriver(t, pgcache.Options{URL: s.URL()})
	if ok, err := other.CompareAndDelete(bg, key, []byte(`"v"`)); !ok || err != nil {
		t.Fatal(ok, err)
	}
	select {
	case <-ch:
	case <-time.After(hangAfter): // a hang detector
		t.Fatal("after the restart, a release did not wake the watch: the listener did not come back")
	}
}

// TestUnloggedCrash: an UNLOGGED table is emptied by the crash recovery (its entries and
// locks are gone), while the fencing table, always logged, keeps its counters, so the
// next fencing number is still above the last.
func TestUnloggedCrash(t *testing.T) {
	s := pgtest.Start(t)
	for _, unlogged := range []bool{false, true} {
		t.Run(fmt.Sprintf("unlogged=%v", unlogged), func(t *testing.T) {
			table := "crash_logged"
			if unlogged {
				table = "crash_unlogged"
			}
			d := newDriver(t, pgcache.Options{URL: s.URL(), Table: table, Unlogged: unlogged})
			if err := d.Set(bg, driver.Entry{Key: "k", Value: []byte(`1`)}); err != nil {
				t.Fatal(err)
			}
			f1, ok, err := d.CreateFenced(bg, driver.Entry{Key: "lock", Value: []byte(`"t"`), TTL: time.Hour})
			if !ok || err != nil {
				t.Fatal(ok, err)
			}
			s.Stop()
			s.Restart(t)
			recovered(t, d, "x")
			_, found, err := d.Get(bg, "k")
			if err != nil || found == unlogged {
				t.Fatalf("after a crash, Get = %v, %v; want found %v", found, err, !unlogged)
			}
			f2, ok, err := d.CreateFenced(bg, driver.Entry{Key: "lock", Value: []byte(`"t"`), TTL: time.Hour})
			if err != nil || ok == !unlogged {
				t.Fatalf("after a crash, CreateFenced = %d, %v, %v; want written %v", f2, ok, err, unlogged)
			}
			if ok && f2 <= f1 {
				t.Fatalf("fencing number after the crash %d; want above %d", f2, f1)
			}
			t.Logf("after the crash: entry kept %v, lock kept %v, fencing %d → %d", found, !ok, f1, f2)
		})
	}
}

// TestPartition: the link to the database freezes (a partition: nothing is closed, no
// byte goes through). Every operation fails at its ctx deadline (nothing else can end it
// on a frozen link: a return before the hang detector shows it), never
// with an answer; cache.Lock returns an error, never Acquired == false. When the link
// thaws the driver answers again. A reset of every connection wakes the watches, and the
// listener comes back.
func TestPartition(t *testing.T) {
	s := pgtest.Start(t)
	p, err := faultproxy.New(s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	url := "postgres://postgres@" + p.Addr() + "/postgres?sslmode=disable&connect_timeout=5"
	d := newDriver(t, pgcache.Options{URL: url})
	c, err := cache.New(cache.Config{Drivers: map[string]cache.Driver{"pg": d}})
	if err != nil {
		t.Fatal(err)
	}
	key := "part.lock"
	if err := d.Set(bg, driver.Entry{Key: key, Value: []byte(`"v"`), TTL: time.Hour}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Watch(bg, key); err != nil { // the listener is up before the freeze
		t.Fatal(err)
	}

	p.Freeze()
	checkFails(t, "link frozen", d, "part.ops", 300*time.Millisecond)
	ctx, cancel := context.WithTimeout(bg, 300*time.Millisecond)
	out, err := cache.Lock(ctx, c, "part.other", time.Minute, func(context.Context) (int, error) { return 1, nil })
	cancel()
	if err == nil || out.Acquired {
		t.Fatalf("cache.Lock over a frozen link = %+v, %v; want an error", out, err)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Logf("cache.Lock over a frozen link: %v", err)
	}
	p.Thaw()
	recovered(t, d, "part.ops")

	woke, err := d.Watch(bg, key)
	if err != nil {
		t.Fatal(err)
	}
	p.Reset()
	select {
	case <-woke:
	case <-time.After(hangAfter): // a hang detector
		t.Fatal("a reset of the listening connection did not wake the watch")
	}
	recovered(t, d, "part.ops")
	var ch <-chan struct{}
	deadline := time.Now().Add(hangAfter)
	for ch == nil {
		if ch, err = d.Watch(bg, key); err != nil && time.Now().After(deadline) {
			t.Fatalf("Watch %v after the reset: %v", hangAfter, err)
		}
	}
	if ok, err := d.CompareAndDelete(bg, key, []byte(`"v"`)); !ok || err != nil {
		t.Fatal(ok, err)
	}
	select {
	case <-ch:
	case <-time.After(hangAfter): // a hang detector
		t.Fatal("after the reset, a release did not wake the watch")
	}
}
