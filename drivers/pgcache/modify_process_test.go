package pgcache_test

import (
	"testing"

	"github.com/cachekit/cache/internal/testkit/pgtest"
	"github.com/cachekit/cache/internal/testkit/xproc"
)

// Cross-process proofs of cache.Modify and of List pushes on PostgreSQL: OS processes
// sharing one table. The scenarios are internal/testkit/xproc's, shared with the other drivers.

// TestProcessesModify: 4 OS processes, each with its own pool, run 250 cache.Modify
// increments each on one key holding a struct counter: "exact" (MaxAttempts 1000) totals
// exactly 1000, "default" totals exactly the calls that succeeded. Modify runs on the
// driver's CompareAndSwap (one UPDATE ... WHERE value = $old). See xproc.Modify.
func TestProcessesModify(t *testing.T) {
	xproc.Modify(t, xtarget(pgtest.URL(t)))
}

// TestProcessesModifyNegativeControl: the same processes with a plain Get-then-Set lose
// updates, so the total above would not be exact without Modify's atomicity.
func TestProcessesModifyNegativeControl(t *testing.T) {
	xproc.ModifyNegativeControl(t, xtarget(pgtest.URL(t)))
}

// TestProcessesListPush: 4 OS processes × 100 List.Push on one key (a JSON array changed
// with Modify, on this driver): the list holds exactly 400 items, each process's items
// once and in its order.
func TestProcessesListPush(t *testing.T) {
	xproc.ListPush(t, xtarget(pgtest.URL(t)))
}
