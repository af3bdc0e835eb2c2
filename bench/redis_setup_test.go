package bench

import (
	"context"
	"errors"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bsm/redislock"
	"github.com/go-redsync/redsync/v4"
	redsyncredis "github.com/go-redsync/redsync/v4/redis"
	"github.com/go-redsync/redsync/v4/redis/goredis/v9"
	"github.com/redis/go-redis/v9"

	"github.com/cachekit/cache"
	"github.com/cachekit/cache/drivers/rediscache"
	"github.com/cachekit/cache/internal/testkit/redistest"
)

// The Redis benchmarks and tests talk to one Redis per test binary, from
// internal/testkit/redistest: a throwaway redis-server on a free loopback port (started on first
// use, no persistence, killed when the tests end), or REDIS_URL if it is set. Without
// either, outside CI, redistest falls back to an in-process miniredis: the tests still
// run on it, but the benchmarks skip, loudly, because miniredis's numbers say nothing
// about Redis. In CI a missing redis-server is a failure.
//
// Every implementation gets a go-redis client of its own, built the same way from the
// same URL (go-redis's defaults), so that none shares a connection pool with another.

func TestMain(m *testing.M) { redistest.Main(m) }

// lockTTL is the TTL of every lock the Redis benchmarks take.
const lockTTL = time.Minute

// redisScope starts every key the Redis benchmarks write: a Redis given by REDIS_URL
// may be shared with other test binaries.
var redisScope = "cachekit-bench." + strconv.Itoa(os.Getpid()) + "."

// redisURL returns the shared Redis's URL. A benchmark skips, saying why, when the
// Redis is miniredis.
func redisURL(tb testing.TB) string {
	tb.Helper()
	u := redistest.URL(tb)
	if _, isB := tb.(*testing.B); isB && redistest.Kind() == redistest.KindMiniredis {
		tb.Skip("no redis-server on PATH and REDIS_URL unset: the Redis benchmarks need a real Redis, not miniredis (install redis-server)")
	}
	return u
}

// newRedisClient returns a go-redis client of its own on the shared Redis, closed at
// tb's cleanup.
func newRedisClient(tb testing.TB) *redis.Client {
	tb.Helper()
	o, err := redis.ParseURL(redisURL(tb))
	if err != nil {
		tb.Fatal(err)
	}
	rdb := redis.NewClient(o)
	tb.Cleanup(func() { _ = rdb.Close() })
	if err := rdb.Ping(context.Background()).Err(); err != nil {
		tb.Fatal(err)
	}
	return rdb
}

// newRedisCache returns the manager over a rediscache driver on a client of its own, no
// prefix (keys are scoped by the caller), JSON codec (the default).
func newRedisCache(tb testing.TB) *cache.Cache {
	tb.Helper()
	return newRedisCacheOn(tb, newRedisClient(tb))
}

// newRedisCacheOn is newRedisCache on the client rdb.
func newRedisCacheOn(tb testing.TB, rdb *redis.Client) *cache.Cache {
	tb.Helper()
	return newRedisCacheWith(tb, rediscache.Options{Client: rdb})
}

// newRedisCacheWith is the manager over a rediscache driver made with o.
func newRedisCacheWith(tb testing.TB, o rediscache.Options) *cache.Cache {
	tb.Helper()
	d, err := rediscache.New(o)
	if err != nil {
		tb.Fatal(err)
	}
	c, err := cache.New(cache.Config{Drivers: map[string]cache.Driver{"redis": d}})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = c.Close() })
	return c
}

// newRedislock returns a bsm/redislock client on a go-redis client of its own.
func newRedislock(tb testing.TB) *redislock.Client {
	tb.Helper()
	return redislock.New(newRedisClient(tb))
}

// newRedsync returns a redsync on one go-redis pool of its own (one Redis: quorum 1).
func newRedsync(tb testing.TB) *redsync.Redsync {
	tb.Helper()
	return redsync.New(goredisPool(newRedisClient(tb)))
}

// goredisPool is redsync's pool over go-redis v9.
func goredisPool(rdb *redis.Client) redsyncredis.Pool { return goredis.NewPool(rdb) }

// redisKindName says which Redis the tests talk to, and its version.
func redisKindName(tb testing.TB) string {
	tb.Helper()
	info, err := newRedisClient(tb).Info(context.Background(), "server").Result()
	if err != nil { // miniredis has no INFO server
		return redistest.Kind()
	}
	version := "?"
	for line := range strings.Lines(info) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "redis_version:"); ok {
			version = v
		}
	}
	return redistest.Kind() + " " + version
}

// floorToken is what the floor's SET NX writes: a real lock writes a random token, the
// floor a constant of the same length as ours.
const floorToken = "pid.12345#ABCDEFGHIJKLMNOPQRSTUVWXYZ"

// lockImpls are the implementations of a Redis lock the benchmarks compare, in the
// order they run.
var lockImpls = []string{"floor", "cachekit", "cachekit-acquire", "redislock", "redsync"}

// locker takes and releases one lock, on one implementation's own client.
type locker func(ctx context.Context, key string) error

// newLocker returns impl's acquire + release, for TestRedisLockers. The benchmarks
// write the same calls out by hand, with no closure between the loop and the call.
func newLocker(tb testing.TB, impl string) locker {
	tb.Helper()
	switch impl {
	case "floor":
		rdb := newRedisClient(tb)
		return func(ctx context.Context, key string) error {
			ok, err := rdb.SetNX(ctx, key, floorToken, lockTTL).Result()
			if err != nil {
				return err
			}
			if !ok {
				return redislock.ErrNotObtained
			}
			return rdb.Del(ctx, key).Err()
		}
	case "cachekit":
		c := newRedisCache(tb)
		return func(ctx context.Context, key string) error {
			out, err := cache.Lock(ctx, c, key, lockTTL, work)
			if err == nil && !out.Acquired {
				err = cache.ErrNotAcquired
			}
			return err
		}
	case "cachekit-acquire":
		c := newRedisCache(tb)
		return func(ctx context.Context, key string) error {
			l, err := cache.Acquire(ctx, c, key, cache.LockOptions{TTL: lockTTL})
			if err != nil {
				return err
			}
			return l.Release(ctx)
		}
	case "redislock":
		rl := newRedislock(tb)
		return func(ctx context.Context, key string) error {
			l, err := rl.Obtain(ctx, key, lockTTL, nil)
			if err != nil {
				return err
			}
			return l.Release(ctx)
		}
	case "redsync":
		rs := newRedsync(tb)
		return func(ctx context.Context, key string) error {
			m := rs.NewMutex(key, redsync.WithTries(1), redsync.WithExpiry(lockTTL))
			if err := m.LockContext(ctx); err != nil {
				return err
			}
			switch ok, err := m.UnlockContext(ctx); {
			case err != nil:
				return err
			case !ok:
				return errors.New("redsync: Unlock found the lock gone")
			}
			return nil
		}
	}
	tb.Fatalf("unknown lock impl %q", impl)
	return nil
}

// TestRedisLockers checks every lock the benchmarks measure, on the shared Redis: a free
// key is taken and released (the key is gone afterwards), and a key held by someone
// else is refused and left alone. So the benchmarks time working locks.
func TestRedisLockers(t *testing.T) {
	rdb := newRedisClient(t)
	for _, impl := range lockImpls {
		t.Run(impl, func(t *testing.T) {
			lock := newLocker(t, impl)
			key := redisScope + "test.lock." + impl
			for i := range 3 {
				if err := lock(ctx, key); err != nil {
					t.Fatalf("free key, round %d: %v", i, err)
				}
				if n, err := rdb.Exists(ctx, key).Result(); err != nil || n != 0 {
					t.Fatalf("after the release the key exists (%d, %v)", n, err)
				}
			}
			if err := rdb.Set(ctx, key, "someone else", lockTTL).Err(); err != nil {
				t.Fatal(err)
			}
			if err := lock(ctx, key); err == nil {
				t.Fatal("a held key was taken")
			}
			if v, err := rdb.Get(ctx, key).Result(); err != nil || v != "someone else" {
				t.Fatalf("the holder's value is now %q, %v", v, err)
			}
			if err := rdb.Del(ctx, key).Err(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestRedisGetSet checks the Get and Set benchmarks' setup: every preloaded key reads
// back, raw and through the manager, with the same value.
func TestRedisGetSet(t *testing.T) {
	preloadRedis(t, true, true)
	rdb, c := newRedisClient(t), newRedisCache(t)
	for i := range keys {
		want := vals[i]
		if got, err := rdb.Get(ctx, rawKeys[i]).Result(); err != nil || got != want {
			t.Fatalf("go-redis Get(%q) = %q, %v; want %q", rawKeys[i], got, err, want)
		}
		var got string
		if found, err := c.Get(ctx, mgrKeys[i], &got); err != nil || !found || got != want {
			t.Fatalf("manager Get(%q) = %q, %v, %v; want %q", mgrKeys[i], got, found, err, want)
		}
		if got, found, err := cache.GetAs[string](ctx, c, mgrKeys[i]); err != nil || !found || got != want {
			t.Fatalf("GetAs(%q) = %q, %v, %v; want %q", mgrKeys[i], got, found, err, want)
		}
	}
	if err := rdb.Del(ctx, append(slices.Clone(rawKeys), mgrKeys...)...).Err(); err != nil {
		t.Fatal(err)
	}
}
