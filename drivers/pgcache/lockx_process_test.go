package pgcache_test

import (
	"testing"

	"github.com/cachekit/cache/internal/testkit/pgtest"
	"github.com/cachekit/cache/internal/testkit/xproc"
)

// The cross-process proofs on PostgreSQL: OS processes, each with its own pool, driver
// and cache.New, on one table. The scenarios and the process plumbing are
// internal/testkit/xproc's, shared with the other drivers.

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

// TestXProcAutoExtend: a holder whose fn runs 3 TTLs under AutoExtend is never
// overlapped by 3 other processes that try to take the lock every TTL/4 while its lease
// is valid, and its renewals move the lease; a renewal a busy machine delays ends the
// lease early and the holder is told (ErrLockLost). See xproc.AutoExtend. The negative
// control runs the same without AutoExtend: the others get in, so the test would fail
// without the renewal.
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

// TestXProcWaitHandoff: a holder process releases and a waiter process (LockOptions.Wait)
// acquires, 50 times, and each time the release's notification (the NOTIFY of the releasing DELETE) is what
// wakes the waiter: its poll is stretched to an hour, so that a poll could win only at
// the end of its one-minute Wait. The negative control gives the waiter a Watch that
// never hears a release (deafWatch): every handoff is then won by its poll, so the test
// would fail without the notification. BenchmarkLockHandoff measures how fast it is.
func TestXProcWaitHandoff(t *testing.T) {
	tg := xtarget(pgtest.URL(t))
	t.Run("notified", func(t *testing.T) { xproc.WaitHandoff(t, tg) })
	t.Run("negative-control", func(t *testing.T) { xproc.WaitHandoffNegative(t, tg) })
}

// TestXProcOnce: 4 processes × 25 goroutines call cache.Once on one key: fn (100 ms,
// counted with an Increment) runs once in all, and every caller gets its value.
func TestXProcOnce(t *testing.T) {
	xproc.Once(t, xtarget(pgtest.URL(t)))
}
