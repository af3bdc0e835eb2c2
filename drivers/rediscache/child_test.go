package rediscache_test

import (
	"context"
	"testing"

	"github.com/cachekit/cache"
	"github.com/cachekit/cache/drivers/rediscache"
	"github.com/cachekit/cache/internal/testkit/xproc"
)

// The cross-process tests (lockx_process_test.go, modify_process_test.go, the mutual
// exclusion proof of proof_test.go) run the test binary again as child processes through
// internal/testkit/xproc: TestMain hands them to child.Main, which runs their job and exits. What
// is Redis's own is here: how a child opens its cache, and the shared scenarios' view of
// a Redis.

// child is the Redis driver's side of the child processes: a driver on the job's URL
// (lxDeafWatch for a deaf waiter), and cache.New with its prefix.
var child = xproc.NewChild("redis",
	func(url string) (*rediscache.Driver, error) { return rediscache.New(rediscache.Options{URL: url}) },
	func(d *rediscache.Driver) cache.Driver { return lxDeafWatch{d} })

// lxDeafWatch is the driver whose Watch never reports a release, as if the release's
// PUBLISH were lost (xproc.DeafWatch). The handoff's negative control.
type lxDeafWatch struct{ *rediscache.Driver }

func (lxDeafWatch) Watch(ctx context.Context, _ string) (<-chan struct{}, error) {
	return xproc.DeafWatch(ctx)
}

// xtarget is the Redis at url as the shared scenarios see it: a fresh key prefix for
// each scenario, flushed at the end of the test.
func xtarget(url string) xproc.Target {
	return xproc.Prefixed(url, scope, func(t *testing.T, url, prefix string) *cache.Cache {
		c, _ := newCache(t, url, prefix) // flushes the prefix at the end
		return c
	})
}
