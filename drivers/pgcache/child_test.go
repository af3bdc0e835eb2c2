package pgcache_test

import (
	"context"
	"testing"

	"github.com/cachekit/cache"
	"github.com/cachekit/cache/drivers/pgcache"
	"github.com/cachekit/cache/internal/testkit/xproc"
)

// The cross-process tests (lockx_process_test.go, modify_process_test.go) run the test
// binary again as child processes through internal/testkit/xproc: TestMain hands them to
// child.Main, which runs their job and exits. What is PostgreSQL's own is here: how a
// child opens its cache, and the shared scenarios' view of a database.

// child is the PostgreSQL driver's side of the child processes: a driver on the job's
// URL (deafWatch for a deaf waiter), and cache.New with its prefix.
var child = xproc.NewChild("pg",
	func(url string) (*pgcache.Driver, error) { return pgcache.New(pgcache.Options{URL: url}) },
	func(d *pgcache.Driver) cache.Driver { return deafWatch{d} })

// deafWatch is the driver whose Watch never reports a release, as if the NOTIFY were
// lost (xproc.DeafWatch). The handoff's negative control.
type deafWatch struct{ *pgcache.Driver }

func (deafWatch) Watch(ctx context.Context, _ string) (<-chan struct{}, error) {
	return xproc.DeafWatch(ctx)
}

// xtarget is the database at url as the shared scenarios see it: a fresh key prefix for
// each scenario, emptied at the end of the test.
func xtarget(url string) xproc.Target {
	return xproc.Prefixed(url, scope, func(t *testing.T, url, prefix string) *cache.Cache {
		c, _ := newCache(t, url, prefix) // empties the prefix at the end
		return c
	})
}
