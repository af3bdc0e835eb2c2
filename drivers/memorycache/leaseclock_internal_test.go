package memorycache

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cachekit/cache/driver"
)

// stalled returns a driver on the default clock whose goroutine has stopped: the coarse
// clock stands still from here, as it does while the CPU is too busy to run it. Inside a
// synctest bubble time moves only when the test sleeps.
func stalled(t *testing.T) *Driver {
	t.Helper()
	d, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	d.coarse.Stop()
	return d
}

// lockEntry is a lock's entry as the lock writes it.
func lockEntry(token string, ttl time.Duration) driver.Entry {
	return driver.Entry{Key: "lock", Value: token, TTL: ttl, NoSlide: true}
}

// takeOver is another holder's attempt to take the lock, once the clock has caught up
// (its goroutine ran again).
func takeOver(t *testing.T, d *Driver) bool {
	t.Helper()
	d.coarse.sync()
	ok, err := d.SetIf(context.Background(), lockEntry("b#2", time.Minute), driver.IfAbsent)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

// A coarse clock that stands still does not shorten a lock entry's life: each write of
// one (create-if-absent, fenced create, Extend) gives it its whole TTL from the time of
// the write, whatever the clock read last. Another holder gets the lock at that
// instant, not a nanosecond before. The negative control, a plain value written the same
// way, expires at once: the clock did lag, so the test would fail if lock entries took
// their expiry from it.
func TestLockEntryOutlivesAStalledClock(t *testing.T) {
	const (
		ttl   = 20 * time.Millisecond
		stall = time.Second // far more than the TTL: without the fix the entry is born expired
	)
	ctx := context.Background()
	writes := []struct {
		name  string
		write func(t *testing.T, d *Driver) // writes the lock at the current instant, with ttl
	}{
		{"SetIf", func(t *testing.T, d *Driver) {
			if ok, err := d.SetIf(ctx, lockEntry("a#1", ttl), driver.IfAbsent); !ok || err != nil {
				t.Fatalf("SetIf = %v, %v", ok, err)
			}
		}},
		{"CreateFenced", func(t *testing.T, d *Driver) {
			if _, ok, err := d.CreateFenced(ctx, lockEntry("a#1", ttl)); !ok || err != nil {
				t.Fatalf("CreateFenced = %v, %v", ok, err)
			}
		}},
		{"Extend", func(t *testing.T, d *Driver) {
			if ok, err := d.Extend(ctx, "lock", "a#1", ttl); !ok || err != nil {
				t.Fatalf("Extend = %v, %v", ok, err)
			}
		}},
	}
	for _, w := range writes {
		t.Run(w.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				d := stalled(t)
				if w.name == "Extend" { // taken before the stall, for longer than it lasts
					if ok, _ := d.SetIf(ctx, lockEntry("a#1", 2*stall), driver.IfAbsent); !ok {
						t.Fatal("SetIf did not write")
					}
				}
				time.Sleep(stall)
				w.write(t, d)
				if left, ok, _ := d.TTL(ctx, "lock"); !ok || left != ttl {
					t.Errorf("TTL right after the write = %v, %v; want %v", left, ok, ttl)
				}
				time.Sleep(ttl - time.Nanosecond)
				if takeOver(t, d) {
					t.Fatalf("another holder took the lock %v after it was written with TTL %v", ttl-time.Nanosecond, ttl)
				}
				time.Sleep(time.Nanosecond)
				// The owner's read, on the clock that has stood still for a nanosecond,
				// still sees the lock: a lag errs toward held, never free.
				if _, found, _ := d.Get(ctx, "lock"); !found {
					t.Error("Get on a lagging clock reported the lock free before the time")
				}
				if !takeOver(t, d) {
					t.Fatalf("another holder could not take the lock when its TTL (%v) had run out", ttl)
				}
			})
		})
	}
	t.Run("negative-control", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			d := stalled(t)
			time.Sleep(stall)
			e := lockEntry("a#1", ttl)
			e.NoSlide = false // a plain value: its expiry comes from the coarse clock
			if err := d.Set(ctx, e); err != nil {
				t.Fatal(err)
			}
			if !takeOver(t, d) {
				t.Fatal("a plain value written on the stalled clock outlived the stall: the clock did not lag, and the test proves nothing")
			}
		})
	})
}

// The coarse clock never reads ahead of the time, however syncs and ticks interleave:
// each reading is at most a reading of the monotonic clock taken after it.
func TestCoarseClockNeverAhead(t *testing.T) {
	c := newCoarseClock(time.Microsecond)
	defer c.Stop()
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for range 20000 {
				if g%2 == 0 {
					c.sync()
				}
				read := c.NowNano()
				now := c.nano + int64(time.Since(c.base))
				if read > now {
					t.Errorf("the clock read %d ns ahead of the time", read-now)
					return
				}
			}
		})
	}
	wg.Wait()
}
