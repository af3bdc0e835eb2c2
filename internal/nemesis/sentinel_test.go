package nemesis

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cachekit/cache/internal/redistest"
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
		{"LockReplicas=1", 1, *duration},
		{"no LockReplicas", 0, *duration / 2},
	} {
		t.Run(strings.ReplaceAll(c.name, " ", "_"), func(t *testing.T) {
			g := redistest.StartSentinelGroup(t)
			job := baseJob(TargetSentinel, strings.Join(g.Addrs(), ","))
			job.Master = g.MasterName()
			job.LockReplicas = c.replicas
			r := run(t, "sentinel, "+c.name, job, g.Nodes(), c.dur, func(h *Harness) []Fault {
				return append(h.ProxyFaults(), h.PauseHolder(), h.KillHolder(),
					Fault{Kind: "pause-master", Weight: 1, Do: func(d time.Duration) {
						m := g.Master()
						if err := g.Pause(m); err != nil {
							t.Fatal(err)
						}
						time.Sleep(d)
						if err := g.Resume(m); err != nil {
							t.Fatal(err)
						}
						waitHealthy(t, g)
					}},
					Fault{Kind: "kill-master", Weight: 1, Do: func(d time.Duration) {
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
					}})
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
	}
	return nil
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
