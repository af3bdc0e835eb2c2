package pgcache_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/cachekit/cache"
	"github.com/cachekit/cache/drivers/pgcache"
	"github.com/cachekit/cache/internal/testkit/pgtest"
)

func TestMain(m *testing.M) {
	child.Main() // a child process of the cross-process tests runs its job and exits here
	code := m.Run()
	pgtest.StopAll()
	// Every driver the tests opened is closed by now: nothing it started may be left.
	if err := goleak.Find(); code == 0 && err != nil {
		fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
		code = 1
	}
	os.Exit(code)
}

// scope returns a fresh key prefix (or table name part) for one test.
func scope(name string) string { return name + "_" + rand.Text()[:8] }

// newDriver opens a driver with o, on the shared server when o has neither Pool nor
// URL, closed at the end of the test.
func newDriver(t testing.TB, o pgcache.Options) *pgcache.Driver {
	t.Helper()
	if o.Pool == nil && o.URL == "" {
		o.URL = pgtest.URL(t)
	}
	d, err := pgcache.New(o)
	if err != nil {
		t.Fatalf("pgcache.New: %v", err)
	}
	t.Cleanup(func() { _ = d.Close() })
	return d
}

// newCache returns a cache over a fresh driver on url with the prefix, flushed (its
// prefix) and closed at cleanup.
func newCache(t testing.TB, url, prefix string) (*cache.Cache, *pgcache.Driver) {
	t.Helper()
	d, err := pgcache.New(pgcache.Options{URL: url})
	if err != nil {
		t.Fatalf("pgcache.New: %v", err)
	}
	c, err := cache.New(cache.Config{Drivers: map[string]cache.Driver{"pg": d}, Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if prefix != "" {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			_ = c.Flush(ctx)
			cancel()
		}
		_ = c.Close()
	})
	return c, d
}
