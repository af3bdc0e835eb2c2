package nemesis

import (
	"strings"
	"testing"
	"time"

	"github.com/cachekit/cache/internal/testkit/faultrun"
	"github.com/cachekit/cache/internal/testkit/redistest"
)

// TestNemesisSentinel: a master, a replica and three Sentinels of the test's own. The
// holders use a Sentinel (failover) client; their dials to the data nodes go through
// proxies of their own. Faults: the links, pause and kill of holders, a pause of the
// master (past the Sentinels' down-after, which may make them fail over), and SIGKILL of
// the master, which they fail over to the replica; the old master then comes back
// empty as a replica.
//
// With LockReplicas 1 the lock is acknowledged only once a replica has it: there must
// be no overlap and no token out of order. Without it (Redis's asynchronous
// replication), a failover may lose a lock and its fencing counter that the old master
// had acknowledged: the second run counts and logs what that does, and does not fail
// on it.
func TestNemesisSentinel(t *testing.T) {
	requireRedis(t)
	for _, c := range []struct {
		name     string
		replicas int
		dur      time.Duration
	}{
		// A failover leaves the master without a replica until the old master is back
		// and synced (seconds), and with LockReplicas 1 no lock can be taken meanwhile:
		// this run needs longer than the others to show as many sections.
		{"LockReplicas=1", 1, 2 * *duration},
		{"no LockReplicas", 0, *duration / 2},
	} {
		t.Run(strings.ReplaceAll(c.name, " ", "_"), func(t *testing.T) {
			g := redistest.StartSentinelGroup(t)
			job := baseJob(faultrun.TargetSentinel, strings.Join(g.Addrs(), ","))
			job.Master = g.MasterName()
			job.LockReplicas = c.replicas
			pauseMaster := Fault{Kind: "pause-master", Weight: 1, Do: func(d time.Duration) {
				m := g.Master()
				if err := g.Pause(m); err != nil {
					t.Fatal(err)
				}
				time.Sleep(d)
				if err := g.Resume(m); err != nil {
					t.Fatal(err)
				}
				faultrun.WaitSentinelHealthy(t, g)
			}}
			killMaster := faultrun.KillMaster(t, g)
			// Every run has a failover, in the middle: the random schedule may add more.
			r := runWith(t, "sentinel, "+c.name, job, g.Nodes(), func(h *Harness) {
				faults := append(h.ProxyFaults(), h.PauseHolder(), h.KillHolder(), pauseMaster, killMaster)
				h.Run(c.dur/2, faults)
				h.Apply(killMaster)
				h.Run(c.dur/2, faults)
			})
			r.log(t)
			if c.replicas > 0 {
				assertSafe(t, r)
				return
			}
			t.Logf("sentinel without LockReplicas (not failed on): %d overlaps, %d tokens out of order in %d sections, %d failovers",
				len(r.report.Overlaps), len(r.report.OutOfOrder), r.report.Sections, r.faults["kill-master"])
		})
	}
}
