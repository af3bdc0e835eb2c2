package pgcache_test

import (
	"testing"
	"time"

	"github.com/cachekit/cache/internal/pgtest"
	"github.com/cachekit/cache/internal/xproc"
)

// The cross-process proofs on PostgreSQL: OS processes, each with its own pool, driver
// and cache.New, on one table. The scenarios and the process plumbing are
// internal/xproc's, shared with the other drivers.

// TestXProcMutualExclusion: 4 OS processes make 100 lock attempts each on one key; inside
// fn an overlap detector (Increment a marker, check it is 1, Decrement) never sees two
// holders. The negative control runs the same processes with a get-then-set lock and
// must see overlaps: the detector works. See xproc.MutualExclusion.
func TestXProcMutualExclusion(t *testing.T) {
	tg := xtarget(pgtest.URL(t))
	t.Run("lock", func(t *testing.T) { xproc.MutualExclusion(t, tg) })
	t.Run("negative-control", func(t *testing.T) { xproc.MutualExclusionNegative(t, tg) })
}

// TestXProcFencing: 4 OS processes × 250 fenced acquisitions of one key, each waiting
// for the lock (Wait), 1000 in all. Every token is unique, and inside fn every token is
// strictly above the highest any holder saw before it (a key that only fn reads and
// writes): zero violations. See xproc.Fencing.
func TestXProcFencing(t *testing.T) {
	xproc.Fencing(t, xtarget(pgtest.URL(t)))
}

// TestXProcAutoExtend: a holder whose fn runs 5 TTLs under AutoExtend is never
// overlapped by 3 other processes that try to take the lock every TTL/4, and its fn's
// ctx is never cancelled. The negative control runs the same without AutoExtend: the
// others get in, so the test would fail without the renewal.
func TestXProcAutoExtend(t *testing.T) {
	tg := xtarget(pgtest.URL(t))
	t.Run("auto-extend", func(t *testing.T) { xproc.AutoExtend(t, tg) })
	t.Run("negative-control", func(t *testing.T) { xproc.AutoExtendNegative(t, tg) })
}

// TestXProcLostForceRelease: while a holder process runs fn under AutoExtend, another
// process (this one) deletes the lock with cache.ForceRelease; the holder's fn ctx is
// cancelled with cause ErrLockLost within one renewal interval, and its Lock's error
// matches ErrLockLost. Five rounds, the delete at a random point of the renewal period.
func TestXProcLostForceRelease(t *testing.T) {
	xproc.LostForceRelease(t, xtarget(pgtest.URL(t)))
}

// TestXProcRememberDistributed: 4 processes × 50 goroutines call RememberWith with
// Distributed on one cold key: the loader (100 ms, counted with an Increment) runs once
// in all, and every caller gets its value. The negative control, without Distributed,
// loads in more than one process.
func TestXProcRememberDistributed(t *testing.T) {
	tg := xtarget(pgtest.URL(t))
	t.Run("distributed", func(t *testing.T) { xproc.RememberDistributed(t, tg) })
	t.Run("negative-control", func(t *testing.T) { xproc.RememberNegative(t, tg) })
}

// pgHandoffLimit bounds the median handoff on PostgreSQL: the waiter wakes on the
// release's NOTIFY, which PostgreSQL delivers when the releasing DELETE commits, not on
// its backoff poll, which by then sleeps tens of milliseconds.
const pgHandoffLimit = 10 * time.Millisecond

// TestXProcWaitHandoff: a holder process releases and a waiter process (LockOptions.Wait)
// acquires, 50 times. The latency from the holder's fn returning (its release follows) to
// the waiter's fn running has a median under pgHandoffLimit. The negative control gives
// the waiter a Watch that never hears a release (deafWatch): its median is then above
// the limit, so the test would fail without the notification.
func TestXProcWaitHandoff(t *testing.T) {
	tg := xtarget(pgtest.URL(t))
	t.Run("notified", func(t *testing.T) { xproc.WaitHandoff(t, tg, pgHandoffLimit) })
	t.Run("negative-control", func(t *testing.T) { xproc.WaitHandoffNegative(t, tg, pgHandoffLimit) })
}

// TestXProcOnce: 4 processes × 25 goroutines call cache.Once on one key: fn (100 ms,
// counted with an Increment) runs once in all, and every caller gets its value.
func TestXProcOnce(t *testing.T) {
	xproc.Once(t, xtarget(pgtest.URL(t)))
}
