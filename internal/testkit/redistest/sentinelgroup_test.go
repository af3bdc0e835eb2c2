package redistest_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cachekit/cache/internal/testkit/redistest"
)

// TestSentinelGroup: a group starts with its replica in sync; a write through a
// failover client reaches the replica; after KillMaster the Sentinels promote the
// replica (WaitFailover), the failover client follows it and the replicated key is
// there; Pause and Resume stop and continue a node; RestartOld brings the killed node
// back, and the Sentinels make it a replica of the new master, which it then copies.
func TestSentinelGroup(t *testing.T) {
	start := time.Now()
	g := redistest.StartSentinelGroup(t)
	t.Logf("group ready in %v: master %s, nodes %v, Sentinels %v", time.Since(start).Round(time.Millisecond), g.Master(), g.Nodes(), g.Addrs())
	ctx := context.Background()
	c := redis.NewFailoverClient(&redis.FailoverOptions{
		MasterName:            g.MasterName(),
		SentinelAddrs:         g.Addrs(),
		ContextTimeoutEnabled: true,
	})
	defer c.Close()
	master := g.Master()
	if !slices.Contains(g.Nodes(), master) {
		t.Fatalf("master %s is not one of the nodes %v", master, g.Nodes())
	}
	if err := c.Set(ctx, "before", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := c.Wait(ctx, 1, time.Second).Err(); err != nil {
		t.Fatal(err)
	}
	var replica string
	for _, n := range g.Nodes() {
		if n != master {
			replica = n
		}
	}
	if err := g.Pause(replica); err != nil {
		t.Fatal(err)
	}
	pipe := c.Pipeline() // WAIT counts the writes of its own connection
	pipe.Set(ctx, "paused", "v", 0)
	wait := redis.NewIntCmd(ctx, "wait", 1, 200)
	_ = pipe.Process(ctx, wait)
	_, _ = pipe.Exec(ctx)
	if n, err := wait.Result(); err != nil || n != 0 {
		t.Fatalf("WAIT 1 with the replica paused = %d, %v; want 0", n, err)
	}
	if err := g.Resume(replica); err != nil {
		t.Fatal(err)
	}
	killed, err := g.KillMaster()
	if err != nil || killed != master {
		t.Fatalf("KillMaster = %s, %v; want %s", killed, err, master)
	}
	killedAt := time.Now()
	newMaster, err := g.WaitFailover(30 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("failover from %s to %s in %v", killed, newMaster, time.Since(killedAt).Round(time.Millisecond))
	if newMaster != replica {
		t.Fatalf("new master %s, want the replica %s", newMaster, replica)
	}
	var v string
	for deadline := time.Now().Add(10 * time.Second); ; {
		if v, err = c.Get(ctx, "before").Result(); err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil || v != "v" {
		t.Fatalf("GET before after the failover = %q, %v", v, err)
	}
	if err := g.RestartOld(killed); err != nil {
		t.Fatal(err)
	}
	restartedAt := time.Now()
	old := redis.NewClient(&redis.Options{Addr: killed})
	defer old.Close()
	for deadline := time.Now().Add(30 * time.Second); ; {
		v, err = old.Get(ctx, "before").Result()
		if err == nil && v == "v" {
			break
		}
		if time.Now().After(deadline) {
			sc := redis.NewSentinelClient(&redis.Options{Addr: g.Addrs()[0]})
			defer sc.Close()
			r, _ := sc.Replicas(ctx, g.MasterName()).Result()
			t.Logf("Sentinel reports replicas %v; the restarted node: %s", r, old.Info(ctx, "replication").Val())
			t.Fatalf("the restarted node never got the data: GET = %q, %v", v, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("the restarted node %s rejoined as a replica and copied the data in %v", killed, time.Since(restartedAt).Round(time.Millisecond))
}
