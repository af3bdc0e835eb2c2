package rediscache_test

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/cachekit/cache/internal/testkit/redistest"
	"github.com/cachekit/cache/internal/testkit/xproc"
)

// The cross-process proofs of the lock's options (waiting, auto-extend, lost-lock cancellation,
// fencing, distributed Remember, Once), each as a test that fails without its property,
// on a single Redis and on the 3-master Cluster; negative controls on the single node.
// Each process has its own client, driver and cache.New. The scenarios and the process
// plumbing are internal/testkit/xproc's, shared with the file driver; the Redis-only proof is
// TestXProcLostServerStopped.

// TestXProcFencing: 4 OS processes × 250 fenced acquisitions of one key, each waiting
// for the lock (Wait), 1000 in all. Every token is unique, and inside fn every token is
// strictly above the highest any holder saw before it (a record in Redis that only fn
// reads and writes): zero violations. See xproc.Fencing.
func TestXProcFencing(t *testing.T) {
	forTargets(t, func(t *testing.T, url string) { xproc.Fencing(t, xtarget(url)) })
}

// TestXProcAutoExtend: a holder whose fn runs 3 TTLs under AutoExtend is never
// overlapped by 3 other processes that try to take the lock every TTL/4 while its lease
// is valid, and its renewals move the lease; a renewal a busy machine delays ends the
// lease early and the holder is told (ErrLockLost). See xproc.AutoExtend. The negative
// control runs the same without AutoExtend: the others get in, so the test would fail
// without the renewal.
func TestXProcAutoExtend(t *testing.T) {
	forTargets(t, func(t *testing.T, url string) { xproc.AutoExtend(t, xtarget(url)) })
	t.Run("negative-control", func(t *testing.T) { xproc.AutoExtendNegative(t, xtarget(redistest.URL(t))) })
}

// TestXProcLostForceRelease: while a holder process runs fn under AutoExtend, another
// process (this one) deletes the lock with cache.ForceRelease; the holder's fn ctx is
// cancelled with cause ErrLockLost within one renewal interval, and its Lock's error
// matches ErrLockLost. Five rounds, the delete at a random point of the renewal period.
func TestXProcLostForceRelease(t *testing.T) {
	forTargets(t, func(t *testing.T, url string) { xproc.LostForceRelease(t, xtarget(url)) })
}

// TestXProcLostServerStopped: the holder's own Redis server is killed while fn runs
// under AutoExtend (on a Cluster: the master that serves the lock's slot): fn's ctx is
// cancelled with cause ErrLockLost after the kill (the holder waits up to
// xproc.LostHold, a hang detector), Lock's error matches ErrLockLost, the process does
// not panic, and after Close no goroutine is left in it. How soon the ctx ends (within
// one renewal interval: renewals run on the driver's fail-fast lock client, see
// lockClient) is logged here and measured by BenchmarkLockLost.
func TestXProcLostServerStopped(t *testing.T) {
	t.Run("single", func(t *testing.T) {
		srv := redistest.Start(t)
		lostServerStopped(t, srv.URL(), srv.Kind(), srv.Stop)
	})
	t.Run("cluster", func(t *testing.T) {
		cl := redistest.StartCluster(t)
		lostServerStopped(t, cl.URL(), "cluster master", func() {
			addr, err := cl.StopOwnerOf("lx.lost")
			if err != nil {
				t.Error(err)
			}
			t.Logf("stopped %s, the master of lx.lost's slot", addr)
		})
	})
}

func lostServerStopped(t *testing.T, url, kind string, stop func()) {
	const ttl = 300 * time.Millisecond
	holder := xproc.Start(t, xproc.Job{Mode: "lost", Store: xproc.Store{Addr: url}, N: 1, TTL: ttl, Hold: xproc.LostHold, LeakCheck: true})
	holder.Next("ready")
	holder.Send("go")
	holder.Next("held")
	time.Sleep(ttl/3 + rand.N(ttl/3))
	killed := time.Now()
	stop()
	r := holder.Next("result")
	holder.Exit() // a panic would show as an exit status
	xproc.LostCheck(t, kind+" killed", ttl, killed, r)
	if r.Leak != "" {
		t.Fatalf("goroutines left in the holder after Close: %s", r.Leak)
	}
}

// TestXProcRememberDistributed: 4 processes × 50 goroutines call RememberWith with
// Distributed on one cold key: the loader (100 ms, counted with an INCR) runs once in
// all, and every caller gets its value. The negative control, without Distributed,
// loads in more than one process.
//
// A waiting caller whose Watch cannot finish its SUBSCRIBE within loadDistributed's 50 ms
// poll window polls that turn instead of failing (it used to get the Watch's error).
func TestXProcRememberDistributed(t *testing.T) {
	forTargets(t, func(t *testing.T, url string) { xproc.RememberDistributed(t, xtarget(url)) })
	t.Run("negative-control", func(t *testing.T) { xproc.RememberNegative(t, xtarget(redistest.URL(t))) })
}

// TestXProcWaitHandoff: a holder process releases and a waiter process (LockOptions.Wait)
// acquires, 50 times, and each time the release's notification (a PUBLISH) is what
// wakes the waiter: its poll is stretched to an hour, so that a poll could win only at
// the end of its one-minute Wait. The negative control gives the waiter a Watch that
// never hears a release (lxDeafWatch): every handoff is then won by its poll, so the test
// would fail without the notification. BenchmarkLockHandoff measures how fast it is.
func TestXProcWaitHandoff(t *testing.T) {
	forTargets(t, func(t *testing.T, url string) { xproc.WaitHandoff(t, xtarget(url)) })
	t.Run("negative-control", func(t *testing.T) {
		xproc.WaitHandoffNegative(t, xtarget(redistest.URL(t)))
	})
}

// TestXProcOnce: 4 processes × 25 goroutines call cache.Once on one key: fn (100 ms,
// counted with an INCR) runs once in all, and every caller gets its value.
func TestXProcOnce(t *testing.T) {
	forTargets(t, func(t *testing.T, url string) { xproc.Once(t, xtarget(url)) })
}
