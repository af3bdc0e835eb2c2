package bench

import (
	"context"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cachekit/cache"
	"github.com/cachekit/cache/drivers/pgcache"
	"github.com/cachekit/cache/internal/testkit/pgtest"
)

// The PostgreSQL benchmarks: a throwaway PostgreSQL from internal/testkit/pgtest for each
// top-level benchmark (initdb in a temporary directory, a free loopback port, fsync off,
// removed when the benchmark ends; without the server binaries they skip, in CI they
// fail). Every implementation gets a pgx pool of its own, built the same way from the
// same URL (pgxpool's defaults), with one connection opened before the timer starts;
// cachekit's driver is given its pool as Options.Pool, and the manager has no prefix.
//
// Lock benchmarks, impl names:
//
//	floor               pool.Acquire, SELECT pg_try_advisory_lock(k), SELECT
//	                    pg_advisory_unlock(k), Release: a session lock on one pooled
//	                    connection, two round trips, nothing written: the least a lock
//	                    on PostgreSQL can cost
//	cachekit            cache.Lock with an empty fn over pgcache: INSERT ... ON CONFLICT
//	                    DO UPDATE WHERE expired, then DELETE ... WHERE value = $token
//	                    with pg_notify: two round trips, two committed writes
//	cachekit-acquire    cache.Acquire + LockHandle.Release: the same statements, no fn
//	cachekit-unlogged   cache.Lock over pgcache on an UNLOGGED table
//	redis-cachekit      cache.Lock over rediscache on the Redis of the Redis benchmarks
//
// Get benchmarks: pgx (SELECT value FROM the table WHERE key = $1, scanned into a
// []byte), cachekit (c.Get through pgcache: the same SELECT with the expiry test, then
// the JSON decode), redis-cachekit (c.Get through rediscache).
//
// Every lock has the same TTL (a minute) and takes and releases the same key on every
// iteration.

// pgLockKey is the advisory lock key of the floor.
const pgLockKey = 4242

// pgURL starts tb's own PostgreSQL and returns its URL.
func pgURL(tb testing.TB) string {
	tb.Helper()
	return pgtest.Start(tb).URL()
}

// newPgPool returns a pool of its own on url with one connection open, closed at tb's
// cleanup.
func newPgPool(tb testing.TB, url string) *pgxpool.Pool {
	tb.Helper()
	p, err := pgxpool.New(ctx, url)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(p.Close)
	if err := p.Ping(ctx); err != nil {
		tb.Fatal(err)
	}
	return p
}

// newPgCache returns the manager over a pgcache driver on a pool of its own.
func newPgCache(tb testing.TB, url string, unlogged bool) *cache.Cache {
	tb.Helper()
	o := pgcache.Options{Pool: newPgPool(tb, url)}
	if unlogged {
		o.Table, o.Unlogged = "cachekit_unlogged", true
	}
	d, err := pgcache.New(o)
	if err != nil {
		tb.Fatal(err)
	}
	c, err := cache.New(cache.Config{Drivers: map[string]cache.Driver{"pg": d}})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = c.Close() })
	if _, err := c.Has(ctx, "warm"); err != nil { // creates the table before the timer
		tb.Fatal(err)
	}
	return c
}

// errNotObtained is the floor's refusal.
var errNotObtained = errors.New("advisory lock not obtained")

// pgFloorLock takes and releases the floor's advisory lock on one pooled connection.
func pgFloorLock(ctx context.Context, p *pgxpool.Pool) error {
	conn, err := p.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	var ok bool
	if err := conn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1)", pgLockKey).Scan(&ok); err != nil {
		return err
	}
	if !ok {
		return errNotObtained
	}
	return conn.QueryRow(ctx, "SELECT pg_advisory_unlock($1)", pgLockKey).Scan(&ok)
}

// BenchmarkPostgresLock is an uncontended lock: acquire, release, one goroutine.
func BenchmarkPostgresLock(b *testing.B) {
	url := pgURL(b)
	key := "cachekit-bench.pg.lock"
	b.Run("impl=floor", func(b *testing.B) {
		p := newPgPool(b, url)
		b.ReportAllocs()
		for b.Loop() {
			if err := pgFloorLock(ctx, p); err != nil {
				b.Fatal(err)
			}
		}
	})
	for _, impl := range []string{"cachekit", "cachekit-unlogged"} {
		b.Run("impl="+impl, func(b *testing.B) {
			c := newPgCache(b, url, impl == "cachekit-unlogged")
			b.ReportAllocs()
			for b.Loop() {
				if out, err := cache.Lock(ctx, c, key, lockTTL, work); !out.Acquired || err != nil {
					b.Fatal("not acquired", err)
				}
			}
		})
	}
	b.Run("impl=cachekit-acquire", func(b *testing.B) {
		c := newPgCache(b, url, false)
		o := cache.LockOptions{TTL: lockTTL}
		b.ReportAllocs()
		for b.Loop() {
			l, err := cache.Acquire(ctx, c, key, o)
			if err != nil {
				b.Fatal(err)
			}
			if err := l.Release(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("impl=redis-cachekit", func(b *testing.B) {
		c := newRedisCache(b)
		rkey := redisScope + "pg-beside.lock"
		b.ReportAllocs()
		for b.Loop() {
			if out, err := cache.Lock(ctx, c, rkey, lockTTL, work); !out.Acquired || err != nil {
				b.Fatal("not acquired", err)
			}
		}
	})
}

// preloadPg writes every key of keys with its value through the manager (the rows the
// pgx floor reads too), then runs VACUUM ANALYZE on the table, so that autovacuum does
// not start in the middle of a measurement.
func preloadPg(tb testing.TB, url string, c *cache.Cache) {
	tb.Helper()
	m := make(map[string]any, len(keys))
	for i, k := range keys {
		m[k] = vals[i]
	}
	if err := c.SetMany(ctx, m, valueTTL); err != nil {
		tb.Fatal(err)
	}
	if _, err := newPgPool(tb, url).Exec(ctx, "VACUUM ANALYZE cachekit_entries"); err != nil {
		tb.Fatal(err)
	}
}

// BenchmarkPostgresGetHit reads a present string: raw pgx (SELECT value by key) beside
// the manager over pgcache, and the manager over rediscache.
func BenchmarkPostgresGetHit(b *testing.B) {
	url := pgURL(b)
	preloadPg(b, url, newPgCache(b, url, false))
	b.Run("impl=pgx", func(b *testing.B) {
		p := newPgPool(b, url)
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			var v []byte
			if err := p.QueryRow(ctx, `SELECT value FROM cachekit_entries WHERE key = $1`, keys[i&mask]).Scan(&v); err != nil {
				b.Fatal("miss", err)
			}
			i++
		}
	})
	b.Run("impl=cachekit", func(b *testing.B) {
		c := newPgCache(b, url, false)
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			var s string
			if found, err := c.Get(ctx, keys[i&mask], &s); !found || err != nil {
				b.Fatal("miss", err)
			}
			i++
		}
	})
	b.Run("impl=redis-cachekit", func(b *testing.B) {
		preloadRedis(b, false, true)
		c := newRedisCache(b)
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			var s string
			if found, err := c.Get(ctx, mgrKeys[i&mask], &s); !found || err != nil {
				b.Fatal("miss", err)
			}
			i++
		}
	})
}

// TestPostgresBenchSetup checks what the PostgreSQL benchmarks time: the floor's
// advisory lock excludes a second session and is released; cachekit's lock is taken and
// released; every preloaded key reads back, raw and through the manager.
func TestPostgresBenchSetup(t *testing.T) {
	url := pgURL(t)
	p := newPgPool(t, url)
	if err := pgFloorLock(ctx, p); err != nil {
		t.Fatal(err)
	}
	held, err := p.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := held.Exec(ctx, "SELECT pg_advisory_lock($1)", pgLockKey); err != nil {
		t.Fatal(err)
	}
	if err := pgFloorLock(ctx, p); !errors.Is(err, errNotObtained) {
		t.Fatalf("the floor took a lock held by another session: %v", err)
	}
	if _, err := held.Exec(ctx, "SELECT pg_advisory_unlock($1)", pgLockKey); err != nil {
		t.Fatal(err)
	}
	held.Release()
	for _, unlogged := range []bool{false, true} {
		c := newPgCache(t, url, unlogged)
		for range 3 {
			if out, err := cache.Lock(ctx, c, "test.lock", lockTTL, work); !out.Acquired || err != nil {
				t.Fatalf("cache.Lock (unlogged %v) = %+v, %v", unlogged, out, err)
			}
		}
	}
	c := newPgCache(t, url, false)
	preloadPg(t, url, c)
	for i, k := range keys {
		var raw []byte
		if err := p.QueryRow(ctx, `SELECT value FROM cachekit_entries WHERE key = $1`, k).Scan(&raw); err != nil || string(raw) != `"`+vals[i]+`"` {
			t.Fatalf("raw %q = %q, %v; want the JSON of %q", k, raw, err, vals[i])
		}
		var s string
		if found, err := c.Get(ctx, k, &s); err != nil || !found || s != vals[i] {
			t.Fatalf("manager Get(%q) = %q, %v, %v; want %q", k, s, found, err, vals[i])
		}
	}
}
