package rediscache_test

import (
	"context"
	"testing"
	"time"

	"github.com/cachekit/cache/driver"
	"github.com/cachekit/cache/drivers/rediscache"
	"github.com/cachekit/cache/internal/testkit/redistest"
)

// TestFenceTokensSurviveDataLoss: a fencing number is max(counter + 1, the server's
// clock in microseconds), so the numbers keep growing when Redis loses the counter: after
// FLUSHALL, and after a restart without persistence, the next number is above every
// number handed out before. A counter set ahead of the clock goes on from itself, and a
// number above 2^53 comes back exact.
func TestFenceTokensSurviveDataLoss(t *testing.T) {
	srv := redistest.Start(t)
	if srv.Kind() != redistest.KindRedisServer {
		t.Skip("needs redis-server (the test restarts it)")
	}
	d := newDriver(t, rediscache.Options{URL: srv.URL()})
	ctx := context.Background()
	key := "lock.fenced"
	v := []byte(`"tok"`)
	var last int64
	take := func(when string) int64 {
		t.Helper()
		var (
			n   int64
			ok  bool
			err error
		)
		for deadline := time.Now().Add(5 * time.Second); ; { // the server may be restarting
			n, ok, err = d.CreateFenced(ctx, driver.Entry{Key: key, Value: v, TTL: time.Minute})
			if err == nil || time.Now().After(deadline) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err != nil || !ok {
			t.Fatalf("CreateFenced %s: %d, %v, %v", when, n, ok, err)
		}
		if n <= last {
			t.Fatalf("fencing number %s: %d, not above the last one, %d", when, n, last)
		}
		t.Logf("fencing number %s: %d (+%d)", when, n, n-last)
		last = n
		if _, err := d.CompareAndDelete(ctx, key, v); err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := time.Now().UnixMicro()
	first := take("first")
	if first < before-int64(time.Minute/time.Microsecond) || first > time.Now().Add(time.Minute).UnixMicro() {
		t.Fatalf("first fencing number %d is not the server's clock in µs (local clock %d)", first, before)
	}
	if first >= 1<<53 {
		t.Fatalf("fencing number %d is not below 2^53", first)
	}
	take("second")
	take("third")

	rdb := d.Client()
	if err := rdb.FlushAll(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	take("after FLUSHALL")

	srv.Restart(t)
	take("after a restart without persistence")

	// A counter ahead of the clock goes on from itself, exactly, even above 2^53.
	const ahead = int64(1<<53 + 1)
	if err := rdb.Set(ctx, rediscache.FenceKey(key), ahead, 0).Err(); err != nil {
		t.Fatal(err)
	}
	if n := take("from a counter set to 2^53+1"); n != ahead+1 {
		t.Fatalf("fencing number from a counter at %d: %d, want %d", ahead, n, ahead+1)
	}
	if s, err := rdb.Get(ctx, rediscache.FenceKey(key)).Result(); err != nil || s != "9007199254740994" {
		t.Fatalf("the counter holds %q, %v; want 9007199254740994", s, err)
	}
	// A counter that is not an integer fails the script before anything is written.
	if err := rdb.Set(ctx, rediscache.FenceKey(key), "x", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := d.CreateFenced(ctx, driver.Entry{Key: key, Value: v}); err == nil {
		t.Fatal("CreateFenced with a counter that is not an integer: no error")
	}
	if n, err := rdb.Exists(ctx, key).Result(); err != nil || n != 0 {
		t.Fatalf("the key was written by a fenced create that failed: EXISTS = %d, %v", n, err)
	}
}
