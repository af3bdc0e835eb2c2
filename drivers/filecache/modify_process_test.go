package filecache_test

import (
	"testing"

	"github.com/cachekit/cache/internal/testkit/xproc"
)

// Cross-process proofs of cache.Modify (read-modify-write) and of List pushes on the
// file driver: OS processes sharing one cache directory. The scenarios are
// internal/testkit/xproc's, shared with the Redis driver.

// TestProcessesModify: 4 OS processes, each with its own driver on one directory, run
// 250 cache.Modify increments each on one key holding a struct counter: "exact"
// (MaxAttempts 1000) totals exactly 1000, "default" totals exactly the calls that
// succeeded. See xproc.Modify.
func TestProcessesModify(t *testing.T) {
	xproc.Modify(t, files)
}

// TestProcessesModifyNegativeControl: the same processes with a plain Get-then-Set lose
// updates, so the total above would not be exact without Modify's atomicity.
func TestProcessesModifyNegativeControl(t *testing.T) {
	xproc.ModifyNegativeControl(t, files)
}

// TestProcessesListPush: 4 OS processes × 100 List.Push on one key (a JSON array changed
// with Modify, on this driver): the list holds exactly 400 items, each process's items
// once and in its order.
func TestProcessesListPush(t *testing.T) {
	xproc.ListPush(t, files)
}
