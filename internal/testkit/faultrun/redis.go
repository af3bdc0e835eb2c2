package faultrun

import (
	"context"
	"flag"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/cachekit/cache/internal/testkit/redistest"
)

// Main is a fault suite's TestMain: this process runs its job and exits in childMain if
// it is a child; otherwise Main parses the flags, runs the tests, stops every server
// they started, and, if they passed, fails the run on a goroutine left running (but for
// those of the servers: redistest.IgnoreGoroutines).
func Main(m *testing.M, childMain func()) {
	childMain()
	flag.Parse()
	code := m.Run()
	redistest.StopAll()
	if code == 0 {
		if err := goleak.Find(redistest.IgnoreGoroutines()...); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

// RequireRedis skips the test without redis-server outside CI, and fails it in CI,
// saying that what ("the nemesis") must run there: a fault suite pauses, restarts and
// fails over its own servers, which miniredis cannot stand in for.
func RequireRedis(t testing.TB, what string) {
	t.Helper()
	if redistest.Binary() == "" {
		if redistest.InCI() {
			t.Fatalf("redis-server is not on PATH; in CI %s must run (install redis-server)", what)
		}
		t.Skip("no redis-server on PATH")
	}
}

// ClusterNodes returns the nodes' addresses from a cluster URL
// (redis://host:port?addr=host:port&addr=host:port).
func ClusterNodes(t testing.TB, raw string) []string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return append([]string{u.Host}, u.Query()["addr"]...)
}

// KillMaster is the fault "kill-master" of a Sentinel group: SIGKILL the master, wait
// until the Sentinels have failed over to the replica, and after d start the old master
// again (empty: it comes back as a replica), then wait until the group can fail over
// again ([WaitSentinelHealthy]). An error fails t.
func KillMaster(t testing.TB, g *redistest.SentinelGroup) Fault {
	return Fault{Kind: "kill-master", Weight: 1, Do: func(d time.Duration) {
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
		WaitSentinelHealthy(t, g)
	}}
}

// WaitSentinelHealthy waits until the Sentinels agree on a master and every other data
// node is its replica with the link up and known to every Sentinel as a healthy
// replica, so that the next fault starts from a group that can fail over again. It
// fails t after 60 s, a hang detector: it takes seconds.
func WaitSentinelHealthy(t testing.TB, g *redistest.SentinelGroup) {
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
