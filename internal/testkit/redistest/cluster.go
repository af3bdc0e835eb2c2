package redistest

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cachekit/cache/internal/testkit/testproc"
)

// clusterNodes is a Redis Cluster of redis-server processes, masters only.
type clusterNodes struct {
	nodes []*proc
}

func (c *clusterNodes) url() string {
	var b strings.Builder
	b.WriteString("redis://" + c.nodes[0].addr())
	for i, n := range c.nodes[1:] {
		if i == 0 {
			b.WriteByte('?')
		} else {
			b.WriteByte('&')
		}
		b.WriteString("addr=" + n.addr())
	}
	return b.String()
}

func (c *clusterNodes) stop() {
	for _, n := range c.nodes {
		n.stop()
	}
}

// startCluster starts n cluster-enabled redis-servers on loopback, joins them with
// `redis-cli --cluster create ... --cluster-replicas 0`, and waits until every node
// reports cluster_state:ok with all 16384 slots assigned.
func startCluster(n int) (*clusterNodes, error) {
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		return nil, fmt.Errorf("redis-cli is not on PATH: it is needed to create the Redis Cluster: %w", err)
	}
	c := &clusterNodes{}
	for range n {
		bus, err := testproc.FreePort()
		if err != nil {
			c.stop()
			return nil, err
		}
		p, err := startProc(0, func(dir string) []string {
			return []string{
				"--cluster-enabled", "yes",
				"--cluster-config-file", dir + "/nodes.conf",
				"--cluster-node-timeout", "5000",
				// The bus port defaults to port+10000, which may be taken or above 65535.
				"--cluster-port", strconv.Itoa(bus),
			}
		})
		if err != nil {
			c.stop()
			return nil, err
		}
		c.nodes = append(c.nodes, p)
	}
	args := []string{"--cluster", "create"}
	for _, p := range c.nodes {
		args = append(args, p.addr())
	}
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, cli, args...).CombinedOutput(); err != nil {
		c.stop()
		return nil, fmt.Errorf("redis-cli --cluster create: %w: %s", err, testproc.Tail(out))
	}
	deadline := time.Now().Add(30 * time.Second)
	for _, p := range c.nodes {
		for {
			err := command(p.addr(), "CLUSTER INFO", func(info string) error {
				if !strings.Contains(info, "cluster_state:ok") || !strings.Contains(info, "cluster_slots_ok:16384") ||
					!strings.Contains(info, "cluster_known_nodes:"+strconv.Itoa(n)) {
					return fmt.Errorf("not ready: %s", strings.Join(strings.Fields(info), " "))
				}
				return nil
			})
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				c.stop()
				return nil, fmt.Errorf("Redis Cluster on %s: %w", p.addr(), err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return c, nil
}

// Cluster is a 3-master Redis Cluster of one test's own, whose nodes the test may stop.
type Cluster struct {
	c *clusterNodes
}

// StartCluster starts a Redis Cluster for tb alone (3 masters, no replicas), stopped at
// tb's cleanup. Without redis-server it skips the test outside CI and fails it in CI.
func StartCluster(tb testing.TB) *Cluster {
	tb.Helper()
	if Binary() == "" {
		testproc.Missing(tb, "redistest: redis-server is not on PATH; in CI the Cluster tests must run (install redis-server)", "redistest: no redis-server on PATH: no Redis Cluster of the test's own")
	}
	c, err := startCluster(3)
	if err != nil {
		tb.Fatalf("redistest: %v", err)
	}
	tb.Cleanup(c.stop)
	return &Cluster{c: c}
}

// URL returns the cluster's URL in go-redis's cluster form.
func (c *Cluster) URL() string { return c.c.url() }

// StopOwnerOf kills, as a crash would, the master that serves key's hash slot, and
// returns its address. The cluster then has a slot range without a master until the
// node comes back (it never does: the test's cluster has no replicas).
func (c *Cluster) StopOwnerOf(key string) (string, error) {
	owner := c.c.nodes[0].addr()
	err := command(owner, "EXISTS "+key, func(reply string) error {
		if strings.HasPrefix(reply, "-MOVED ") { // -MOVED <slot> <host:port>
			f := strings.Fields(reply)
			owner = f[len(f)-1]
			return nil
		}
		if strings.HasPrefix(reply, "-") {
			return fmt.Errorf("EXISTS %s: %s", key, reply)
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	for _, n := range c.c.nodes {
		if n.addr() == owner {
			n.stop()
			return owner, nil
		}
	}
	return "", fmt.Errorf("no node of the cluster is %s", owner)
}
