package memorycache_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/cachekit/cache/driver"
	"github.com/cachekit/cache/drivers/memorycache"
)

// fakeClock is a clock the tests step by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func newFake(t *testing.T, o memorycache.Options) (*memorycache.Driver, *fakeClock) {
	t.Helper()
	clk := &fakeClock{now: time.Unix(1_700_000_000, 0)}
	o.Now = clk.Now
	d, err := memorycache.New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	return d, clk
}

func has(t *testing.T, d *memorycache.Driver, key string) bool {
	t.Helper()
	_, found, err := d.Get(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	return found
}

func TestTTLWithFakeClock(t *testing.T) {
	d, clk := newFake(t, memorycache.Options{})
	ctx := context.Background()
	_ = d.Set(ctx, driver.Entry{Key: "k", Value: 1, TTL: time.Minute})
	_ = d.Set(ctx, driver.Entry{Key: "forever", Value: 1})
	clk.Advance(59 * time.Second)
	if !has(t, d, "k") {
		t.Fatal("expired before its TTL")
	}
	clk.Advance(time.Second)
	if has(t, d, "k") {
		t.Fatal("alive at its TTL")
	}
	clk.Advance(100 * 365 * 24 * time.Hour)
	if !has(t, d, "forever") {
		t.Fatal("a TTL-0 entry expired")
	}
}

// memoryExtended: every hit pushes the expiry back by the entry's own TTL.
func TestSlidingHitPushesExpiry(t *testing.T) {
	d, clk := newFake(t, memorycache.Options{Sliding: true})
	ctx := context.Background()
	_ = d.Set(ctx, driver.Entry{Key: "session", Value: "s", TTL: time.Minute})
	for range 10 {
		clk.Advance(50 * time.Second)
		if !has(t, d, "session") {
			t.Fatal("a session read every 50s expired with a 1m sliding TTL")
		}
	}
	clk.Advance(61 * time.Second)
	if has(t, d, "session") {
		t.Fatal("a session left alone for longer than its TTL is still there")
	}
}

// An expired entry never comes back, read or not.
func TestSlidingExpiredNeverComesBack(t *testing.T) {
	d, clk := newFake(t, memorycache.Options{Sliding: true})
	ctx := context.Background()
	_ = d.Set(ctx, driver.Entry{Key: "k", Value: 1, TTL: time.Minute})
	clk.Advance(time.Minute + time.Nanosecond)
	for range 3 {
		if has(t, d, "k") {
			t.Fatal("an expired entry came back on read")
		}
	}
}

// The conditional-write probe, Increment and Pull never slide: a probe on a held lock
// must not extend it.
func TestSlidingProbeDoesNotExtend(t *testing.T) {
	d, clk := newFake(t, memorycache.Options{Sliding: true})
	ctx := context.Background()
	ok, _ := d.SetIf(ctx, driver.Entry{Key: "lock", Value: "a#1", TTL: time.Minute}, driver.IfAbsent)
	if !ok {
		t.Fatal("first SetIf did not write")
	}
	_, _ = d.Increment(ctx, "n", 1, time.Minute)
	for range 3 {
		clk.Advance(15 * time.Second)
		if ok, _ := d.SetIf(ctx, driver.Entry{Key: "lock", Value: "b#2", TTL: time.Minute}, driver.IfAbsent); ok {
			t.Fatal("SetIf took a live lock")
		}
		if _, err := d.Increment(ctx, "n", 1, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	// 61s after the writes: neither was extended by the probes and increments.
	clk.Advance(16 * time.Second)
	if ok, _ := d.SetIf(ctx, driver.Entry{Key: "lock", Value: "c#3", TTL: time.Minute}, driver.IfAbsent); !ok {
		t.Fatal("the probes extended the lock past its TTL")
	}
	if n, _ := d.Increment(ctx, "n", 1, time.Minute); n != 1 {
		t.Fatalf("Increment slid the counter's TTL: got %d; want a new counter (1)", n)
	}
}

func TestIncrementKeepsTTLWithFakeClock(t *testing.T) {
	d, clk := newFake(t, memorycache.Options{})
	ctx := context.Background()
	_ = d.Set(ctx, driver.Entry{Key: "n", Value: 1, TTL: time.Minute})
	clk.Advance(40 * time.Second)
	if n, err := d.Increment(ctx, "n", 1, time.Hour); n != 2 || err != nil {
		t.Fatalf("Increment = %d, %v", n, err)
	}
	clk.Advance(20 * time.Second)
	if has(t, d, "n") {
		t.Fatal("Increment renewed the TTL")
	}
	if n, _ := d.Increment(ctx, "new", 1, time.Minute); n != 1 {
		t.Fatal("a new counter did not start at the delta")
	}
	clk.Advance(time.Minute)
	if has(t, d, "new") {
		t.Fatal("a new counter did not get ttlIfNew")
	}
}

func TestIncrementNotInteger(t *testing.T) {
	d, _ := newFake(t, memorycache.Options{})
	ctx := context.Background()
	_ = d.Set(ctx, driver.Entry{Key: "s", Value: "x"})
	if _, err := d.Increment(ctx, "s", 1, 0); !errors.Is(err, driver.ErrNotInteger) {
		t.Fatalf("Increment of a string = %v; want ErrNotInteger", err)
	}
	_ = d.Set(ctx, driver.Entry{Key: "max", Value: int64(1<<63 - 1)})
	if _, err := d.Increment(ctx, "max", 1, 0); !errors.Is(err, driver.ErrNotInteger) {
		t.Fatalf("Increment past MaxInt64 = %v; want an overflow error", err)
	}
}

func TestMaxItemsBounds(t *testing.T) {
	d, err := memorycache.New(memorycache.Options{MaxItems: 100})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ctx := context.Background()
	for i := range 10_000 {
		_ = d.Set(ctx, driver.Entry{Key: string(rune('a'+i%26)) + time.Duration(i).String(), Value: i})
	}
	if n := d.Len(); n > 110 {
		t.Fatalf("Len() = %d with MaxItems 100", n)
	}
}

func TestBadOptions(t *testing.T) {
	for _, o := range []memorycache.Options{
		{DefaultTTL: -time.Second},
		{MaxItems: -1},
		{MaxItems: 10, MaxBytes: 10},
	} {
		if d, err := memorycache.New(o); err == nil {
			d.Close()
			t.Errorf("New(%+v) = nil error", o)
		}
	}
}

// Close stops otter's maintenance goroutine.
func TestCloseLeavesNoGoroutine(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	for _, o := range []memorycache.Options{{}, {MaxItems: 10}, {MaxBytes: 1 << 20}, {Sliding: true}} {
		d, err := memorycache.New(o)
		if err != nil {
			t.Fatal(err)
		}
		_ = d.Set(context.Background(), driver.Entry{Key: "k", Value: 1, TTL: time.Minute})
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// Reading a lock's owner on memoryExtended does not keep the lock alive.
func TestSlidingNeverExtendsALock(t *testing.T) {
	d, clk := newFake(t, memorycache.Options{Sliding: true})
	ctx := context.Background()
	if ok, _ := d.SetIf(ctx, driver.Entry{Key: "lock", Value: "a#1", TTL: 10 * time.Second, NoSlide: true}, driver.IfAbsent); !ok {
		t.Fatal("SetIf did not write")
	}
	for range 3 {
		clk.Advance(8 * time.Second / 3)
		if !has(t, d, "lock") {
			t.Fatal("the lock expired before its TTL")
		}
	}
	clk.Advance(2*time.Second + time.Millisecond)
	if has(t, d, "lock") {
		t.Fatal("reads of the lock's owner kept it alive past its TTL")
	}
}
