package rediscache_test

import (
	"context"
	"testing"
	"time"

	"github.com/cachekit/cache/internal/testkit/redistest"
	"github.com/cachekit/cache/internal/testkit/xproc"
)

// Cross-process proofs of cache.Modify (read-modify-write) and of native List pushes,
// on a single Redis and on the 3-master Cluster. The scenarios are internal/testkit/xproc's,
// shared with the file driver; the checks of how the list is stored are Redis's own.

// TestProcessesModify: 4 OS processes, each with its own client, run 250 cache.Modify
// increments each on one key holding a struct counter: "exact" (MaxAttempts 1000) totals
// exactly 1000, "default" totals exactly the calls that succeeded. See xproc.Modify.
func TestProcessesModify(t *testing.T) {
	forTargets(t, func(t *testing.T, url string) { xproc.Modify(t, xtarget(url)) })
}

// TestProcessesModifyNegativeControl: the same processes with a plain Get-then-Set lose
// updates, so the total above would not be exact without Modify's atomicity.
func TestProcessesModifyNegativeControl(t *testing.T) {
	xproc.ModifyNegativeControl(t, xtarget(redistest.URL(t)))
}

// TestProcessesListPush: 4 OS processes × 100 List.Push on one key: the list (a native
// Redis list) holds exactly 400 items, each process's items once and in its order.
func TestProcessesListPush(t *testing.T) {
	forTargets(t, func(t *testing.T, url string) {
		s := xproc.ListPush(t, xtarget(url))
		ctx := context.Background()
		_, d := newCache(t, url, s.Prefix)
		if typ := d.Client().Type(ctx, s.Prefix+".list").Val(); typ != "list" {
			t.Fatalf("TYPE of the list's key = %q; want a native Redis list", typ)
		}
		if ms := d.Client().PTTL(ctx, s.Prefix+".list").Val(); ms <= 0 || ms > time.Minute {
			t.Fatalf("the list's PTTL = %v; want the List's 1m, set once", ms)
		}
	})
}
