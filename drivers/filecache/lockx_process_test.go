package filecache_test

import (
	"testing"

	"github.com/cachekit/cache/internal/testkit/xproc"
)

// The cross-process proofs of the lock's options on the file driver (waiting, auto-extend,
// lost-lock cancellation, fencing, distributed Remember, Once), each as a test that fails
// without its property: OS processes sharing one cache directory, each with its own
// driver and cache.New. The scenarios and the process plumbing are internal/testkit/xproc's,
// shared with the Redis driver.

// TestXProcFencing: 4 OS processes × 250 fenced acquisitions of one key, each waiting
// for the lock (Wait), 1000 in all. Every token is unique, and inside fn every token is
// strictly above the highest any holder saw before it (a key, so a file, that only fn
// reads and writes): zero violations. See xproc.Fencing.
func TestXProcFencing(t *testing.T) {
	xproc.Fencing(t, files)
}

// TestXProcAutoExtend: a holder whose fn runs 3 TTLs under AutoExtend is never
// overlapped by 3 other processes that try to take the lock every TTL/4 while its lease
// is valid, and its renewals move the lease; a renewal a busy machine delays ends the
// lease early and the holder is told (ErrLockLost). See xproc.AutoExtend. The negative
// control runs the same without AutoExtend: the others get in, so the test would fail
// without the renewal.
func TestXProcAutoExtend(t *testing.T) {
	t.Run("auto-extend", func(t *testing.T) { xproc.AutoExtend(t, files) })
	t.Run("negative-control", func(t *testing.T) { xproc.AutoExtendNegative(t, files) })
}

// TestXProcLostForceRelease: while a holder process runs fn under AutoExtend, another
// process (this one) deletes the lock with cache.ForceRelease; the holder's fn ctx is
// cancelled with cause ErrLockLost within one renewal interval (TTL/3, plus 50 ms of
// slack), and its Lock's error matches ErrLockLost. Five rounds, the delete at a random
// point of the renewal period.
func TestXProcLostForceRelease(t *testing.T) {
	xproc.LostForceRelease(t, files)
}

// TestXProcRememberDistributed: 4 processes × 50 goroutines call RememberWith with
// Distributed on one cold key: the loader (100 ms, counted with cache.Increment on
// another key) runs once in all, and every caller gets its value. The negative control,
// without Distributed, loads in more than one process.
func TestXProcRememberDistributed(t *testing.T) {
	t.Run("distributed", func(t *testing.T) { xproc.RememberDistributed(t, files) })
	t.Run("negative-control", func(t *testing.T) { xproc.RememberNegative(t, files) })
}

// TestXProcWaitHandoff: a holder process releases and a waiter process (LockOptions.Wait)
// acquires, 50 times, and each time the release's notification (inotify's IN_DELETE, or the stat poller where inotify is not available) is what
// wakes the waiter: its poll is stretched to an hour, so that a poll could win only at
// the end of its one-minute Wait. The negative control gives the waiter a Watch that
// never hears a release (lxDeafWatch): every handoff is then won by its poll, so the test
// would fail without the notification. BenchmarkLockHandoff measures how fast it is.
func TestXProcWaitHandoff(t *testing.T) {
	t.Run("notified", func(t *testing.T) { xproc.WaitHandoff(t, files) })
	t.Run("negative-control", func(t *testing.T) { xproc.WaitHandoffNegative(t, files) })
}

// TestXProcOnce: 4 processes × 25 goroutines call cache.Once on one key: fn (100 ms,
// counted with cache.Increment on another key) runs once in all, and every caller gets
// its value.
func TestXProcOnce(t *testing.T) {
	xproc.Once(t, files)
}
