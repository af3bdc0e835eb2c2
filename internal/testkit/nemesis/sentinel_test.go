package nemesis

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

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
			job := baseJob(TargetSentinel, strings.Join(g.Addrs(), ","))
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
				waitHealthy(t, g)
			}}
			killMaster := Fault{Kind: "kill-master", Weight: 1, Do: func(d time.Duration) {
				old, err := g.KillMaster()
				if err != nil {
					t.Fatal(err)
				}
				if _, err := g.WaitFailover(30 * time.Second); err != nil {
					t.Fatal(err)
				}
				time.Sleep(d)
				if err := g.RestartOld(old); err != nil {
					t.Fatal(err)
				}
				waitHealthy(t, g)
			}}
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

// waitHealthy waits until the Sentinels agree on a master and every other data node is
// its replica with the link up, so that the next fault starts from a group that can fail
// over again.
func waitHealthy(t *testing.T, g *redistest.SentinelGroup) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	var last error
	for time.Now().Before(deadline) {
		if last = healthy(g); last == nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("the Sentinel group did not settle in 60s: %v", last)
}

func healthy(g *redistest.SentinelGroup) error {
	master := g.Master()
	if master == "" {
		return fmt.Errorf("no master")
	}
	for _, n := range g.Nodes() {
		info, err := replication(n)
		if err != nil {
			return fmt.Errorf("%s: %w", n, err)
		}
		if n == master {
			if info["role"] != "master" {
				return fmt.Errorf("master %s has role %q", n, info["role"])
			}
			continue
		}
		if info["role"] != "slave" || info["master_link_status"] != "up" || "127.0.0.1:"+info["master_port"] != master {
			return fmt.Errorf("%s is not yet a replica of %s in sync: role %s, link %s, master port %s",
				n, master, info["role"], info["master_link_status"], info["master_port"])
		}
		// The Sentinels must know it as a healthy replica too, or they have nothing to
		// promote at the next failure (they learn of replicas from the master's INFO,
		// every 10 s).
		for _, s := range g.Addrs() {
			if err := sentinelKnows(s, g.MasterName(), n); err != nil {
				return fmt.Errorf("Sentinel %s: %w", s, err)
			}
		}
	}
	return nil
}

// sentinelKnows checks that the Sentinel at addr lists replica as a replica of master
// with no flag but "slave" and its link to the master up.
func sentinelKnows(addr, master, replica string) error {
	c := redis.NewSentinelClient(&redis.Options{Addr: addr, DialTimeout: time.Second, ReadTimeout: time.Second, MaxRetries: -1})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	rs, err := c.Replicas(ctx, master).Result()
	if err != nil {
		return err
	}
	for _, r := range rs {
		if r["ip"]+":"+r["port"] != replica {
			continue
		}
		if r["flags"] != "slave" || r["master-link-status"] != "ok" {
			return fmt.Errorf("replica %s: flags %q, master link %q", replica, r["flags"], r["master-link-status"])
		}
		return nil
	}
	return fmt.Errorf("does not know replica %s yet", replica)
}

// replication returns the fields of a node's INFO replication.
func replication(addr string) (map[string]string, error) {
	c := redis.NewClient(&redis.Options{Addr: addr, DialTimeout: time.Second, ReadTimeout: time.Second, MaxRetries: -1})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	s, err := c.Info(ctx, "replication").Result()
	if err != nil {
		return nil, err
	}
	f := map[string]string{}
	for _, l := range strings.Split(s, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(l), ":"); ok {
			f[k] = v
		}
	}
	return f, nil
}
