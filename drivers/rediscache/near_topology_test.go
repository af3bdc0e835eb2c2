package rediscache_test

import (
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cachekit/cache"
	"github.com/cachekit/cache/driver"
	"github.com/cachekit/cache/drivers/rediscache"
	"github.com/cachekit/cache/drivertest"
	"github.com/cachekit/cache/internal/testkit/redistest"
)

// The near cache on a Cluster and on Sentinel, and the conformance suite with it on.

// TestNearConformance runs the driver conformance suite with Options.Near on, on a
// single Redis and on a Cluster: every promise of the driver still holds when reads go
// through the near tier (the suite reads through the manager, right after its writes).
func TestNearConformance(t *testing.T) {
	for _, tg := range targets {
		t.Run(tg.name, func(t *testing.T) {
			tg.url(t)
			open := func(t *testing.T, ttl time.Duration) driver.Driver {
				return newDriver(t, rediscache.Options{URL: tg.url(t), DefaultTTL: ttl, Near: &rediscache.NearOptions{}})
			}
			drivertest.RunWith(t, drivertest.Harness{
				New:               func(t *testing.T) driver.Driver { return open(t, 0) },
				NewWithDefaultTTL: open,
				Plant:             plantHash,
			})
		})
	}
}

// TestNearClusterMasterLost: on a Cluster, each master has its own tracking connection,
// and a hit needs every one of them current. When one master dies, the near tier stops
// answering within MaxStaleness, for the keys of every master.
func TestNearClusterMasterLost(t *testing.T) {
	cl := redistest.StartCluster(t)
	c, d := newNear(t, rediscache.Options{URL: cl.URL()}, rediscache.NearOptions{})
	ctx := context.Background()
	keys := make([]string, 20)
	for i := range keys {
		keys[i] = "cl." + strconv.Itoa(i)
		if err := c.Set(ctx, keys[i], "v", 0); err != nil {
			t.Fatal(err)
		}
		warm(t, c, d, keys[i])
	}
	addr, err := cl.StopOwnerOf(keys[0])
	if err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	for rediscache.NearFresh(d) {
		if time.Since(stopped) > 2*nearWindow {
			t.Fatalf("still fresh %v after master %s died", time.Since(stopped), addr)
		}
		time.Sleep(time.Millisecond)
	}
	t.Logf("master %s stopped: the near tier stopped answering after %v", addr, time.Since(stopped).Round(100*time.Microsecond))
}

// TestNearSentinelFailover: on a Sentinel client, the tracking connection follows the
// master. A write by another client invalidates; after the master is killed and a
// replica promoted, the tracking connection reconnects to the new master (the near tier
// starts over), a write there invalidates, and hits come back.
func TestNearSentinelFailover(t *testing.T) {
	g := redistest.StartSentinelGroup(t)
	fo := func() *redis.Client { return failoverClient(t, g, false) }
	c, d := newNear(t, rediscache.Options{Client: fo()}, rediscache.NearOptions{})
	other := fo()
	ctx := context.Background()
	write := func(v string) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			err := other.Set(ctx, "s", `"`+v+`"`, 0).Err()
			if err == nil {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("write %s: %v", v, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	expect := func(want string) {
		t.Helper()
		time.Sleep(nearWindow)
		deadline := time.Now().Add(30 * time.Second)
		for {
			rctx, cancel := context.WithTimeout(ctx, time.Second)
			v, _, err := cacheGetString(rctx, c, "s")
			cancel()
			if err == nil {
				if v != want {
					t.Fatalf("read MaxStaleness after the write: %q; want %q", v, want)
				}
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("read: %v", err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	write("one")
	warm(t, c, d, "s")
	write("two")
	expect("two")
	warm(t, c, d, "s")

	killed, err := g.KillMaster()
	if err != nil {
		t.Fatal(err)
	}
	newMaster, err := g.WaitFailover(30 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("master %s killed, %s promoted", killed, newMaster)
	write("three")
	expect("three")
	warm(t, c, d, "s") // the tracking connection is back, on the new master
	write("four")
	expect("four")
}

// failoverClient is a Sentinel client of g's master (of a replica, with replicaOnly),
// closed at cleanup.
func failoverClient(t *testing.T, g *redistest.SentinelGroup, replicaOnly bool) *redis.Client {
	t.Helper()
	c := redis.NewFailoverClient(&redis.FailoverOptions{MasterName: g.MasterName(), SentinelAddrs: g.Addrs(), ReplicaOnly: replicaOnly, ContextTimeoutEnabled: true})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// TestNearSentinelPlannedFailover: SENTINEL FAILOVER, the routine planned failover, in
// which the old master keeps running and answering (Sentinel turns it into a replica
// only seconds later), then writes on the new master, a counter every 2 ms for 12 s,
// while four readers read it through the near cache. No read may return a value older
// than a write acknowledged more than MaxStaleness before the read began: the tracking
// connection must be on the new master before a copy is served again.
func TestNearSentinelPlannedFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("about 20 s")
	}
	g := redistest.StartSentinelGroup(t)
	c, d := newNear(t, rediscache.Options{Client: failoverClient(t, g, false)}, rediscache.NearOptions{})
	ctx := context.Background()
	const key = "planned"
	if err := failoverClient(t, g, false).Set(ctx, key, "0", 0).Err(); err != nil {
		t.Fatal(err)
	}
	s := &staleness{}
	s.acked(time.Now().UnixNano())
	waitFresh(t, d)
	done := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() { readCounter(c, key, s, done) })
	}
	old := g.Master()
	sentinel := redis.NewSentinelClient(&redis.Options{Addr: g.Addrs()[0]})
	defer sentinel.Close()
	if err := sentinel.Failover(ctx, g.MasterName()).Err(); err != nil {
		t.Fatalf("SENTINEL FAILOVER: %v", err)
	}
	newMaster, err := g.WaitFailover(30 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("SENTINEL FAILOVER: %s → %s", old, newMaster)
	writer := plain(t, "redis://"+newMaster+"/0")
	for i, end := 1, time.Now().Add(12*time.Second); time.Now().Before(end); i++ {
		if err := writer.Set(ctx, key, strconv.Itoa(i), 0).Err(); err != nil {
			t.Fatalf("write %d on the new master: %v", i, err)
		}
		s.acked(time.Now().UnixNano())
		time.Sleep(2 * time.Millisecond)
	}
	time.Sleep(2 * nearWindow)
	close(done)
	wg.Wait()
	t.Logf("%d writes on the new master, %d reads, %d beyond MaxStaleness; worst: a read began %v after its value was replaced",
		s.writes()-1, s.reads.Load(), s.stale.Load(), time.Duration(s.worst.Load()))
	if n := s.stale.Load(); n > 0 {
		t.Errorf("%d reads returned a value replaced more than MaxStaleness (%v) before they began", n, nearWindow)
	}
	if n, _, err := cache.GetAs[int](ctx, c, key); err != nil || n != s.writes()-1 {
		t.Errorf("last read %d, %v; want %d", n, err, s.writes()-1)
	}
}

// readCounter reads key (a counter) through c until done, checking each read with s.
func readCounter(c *cache.Cache, key string, s *staleness, done <-chan struct{}) {
	for {
		select {
		case <-done:
			return
		default:
		}
		start := time.Now().UnixNano()
		rctx, cancel := context.WithTimeout(context.Background(), time.Second)
		v, ok, err := cache.GetAs[int](rctx, c, key)
		cancel()
		if err == nil && ok {
			s.check(start, v, nearWindow)
		}
		time.Sleep(100 * time.Microsecond)
	}
}

// TestNearReplicaReadsRefused: New refuses Near over a client that reads from replicas:
// a Cluster client with ReadOnly, RouteRandomly or RouteByLatency, a Sentinel client
// with ReplicaOnly, and a client of a replica's address.
func TestNearReplicaReadsRefused(t *testing.T) {
	for _, o := range []redis.ClusterOptions{{ReadOnly: true}, {RouteRandomly: true}, {RouteByLatency: true}} {
		o.Addrs = []string{"127.0.0.1:1"}
		cl := redis.NewClusterClient(&o)
		_, err := rediscache.New(rediscache.Options{Client: cl, Near: &rediscache.NearOptions{}})
		_ = cl.Close()
		if !errors.Is(err, rediscache.ErrNearReplicaReads) {
			t.Errorf("Cluster client ReadOnly %v, RouteRandomly %v, RouteByLatency %v: New: %v; want ErrNearReplicaReads", o.ReadOnly, o.RouteRandomly, o.RouteByLatency, err)
		}
	}
	if _, err := rediscache.New(rediscache.Options{URL: "redis://127.0.0.1:1?addr=127.0.0.1:2&read_only=true", Near: &rediscache.NearOptions{}}); !errors.Is(err, rediscache.ErrNearReplicaReads) {
		t.Errorf("cluster URL with read_only=true: New: %v; want ErrNearReplicaReads", err)
	}
	g := redistest.StartSentinelGroup(t)
	if _, err := rediscache.New(rediscache.Options{Client: failoverClient(t, g, true), Near: &rediscache.NearOptions{}}); !errors.Is(err, rediscache.ErrNearReplicaReads) {
		t.Errorf("Sentinel client with ReplicaOnly: New: %v; want ErrNearReplicaReads", err)
	}
	master := g.Master()
	for _, addr := range g.Nodes() {
		d, err := rediscache.New(rediscache.Options{URL: "redis://" + addr + "/0", Near: &rediscache.NearOptions{}})
		switch {
		case addr == master && err != nil:
			t.Errorf("the master %s: New: %v", addr, err)
		case addr != master && !errors.Is(err, rediscache.ErrNearReplicaReads):
			t.Errorf("the replica %s: New: %v; want ErrNearReplicaReads", addr, err)
		}
		if d != nil {
			_ = d.Close()
		}
	}
}

// addReplica starts a Cluster node and makes it a replica of the master that serves
// key, and returns a client of it once it is in sync.
func addReplica(t *testing.T, cl *redistest.Cluster, key string) *redis.Client {
	t.Helper()
	ctx := context.Background()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	bus := ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close()
	srv := redistest.StartWith(t, "--cluster-enabled", "yes", "--cluster-config-file", t.TempDir()+"/nodes.conf",
		"--cluster-node-timeout", "5000", "--cluster-port", strconv.Itoa(bus))
	rep := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { _ = rep.Close() })
	co, err := redis.ParseClusterURL(cl.URL())
	if err != nil {
		t.Fatal(err)
	}
	cc := redis.NewClusterClient(co)
	defer cc.Close()
	master, err := cc.MasterForKey(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	id, err := master.Do(ctx, "cluster", "myid").Text()
	if err != nil {
		t.Fatal(err)
	}
	host, port, _ := net.SplitHostPort(master.Options().Addr)
	mbus := clusterBusPort(t, master, id)
	if err := rep.Do(ctx, "cluster", "meet", host, port, mbus).Err(); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the new node knows the master", func() bool {
		return rep.Do(ctx, "cluster", "replicate", id).Err() == nil
	})
	waitUntil(t, "the replica is in sync", func() bool {
		info, _ := rep.Info(ctx, "replication").Result()
		return strings.Contains(info, "master_link_status:up")
	})
	return rep
}

// clusterBusPort is the bus port of node id, from CLUSTER NODES on c.
func clusterBusPort(t *testing.T, c *redis.Client, id string) string {
	t.Helper()
	nodes, err := c.ClusterNodes(context.Background()).Result()
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(nodes) {
		f := strings.Fields(line)
		if len(f) > 1 && f[0] == id {
			_, rest, _ := strings.Cut(f[1], "@") // ip:port@cport[,hostname]
			cport, _, _ := strings.Cut(rest, ",")
			return cport
		}
	}
	t.Fatalf("no node %s in CLUSTER NODES", id)
	return ""
}

// waitUntil polls cond every 20 ms, and fails t after a minute (a hang detector).
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("hang detector: a minute and still not: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestNearClusterFailover: CLUSTER FAILOVER (a planned failover: the replica takes over
// the master's slots, the old master becomes its replica and keeps answering) while
// four readers read a key of those slots through the near cache and another client
// writes it every 2 ms: no read returns a value replaced more than MaxStaleness before
// it began, and hits come back afterwards.
//
// One window is Redis's own, not the near cache's: the new master takes writes as soon
// as it has won the election, and the old one goes on answering reads as a master until
// the cluster bus tells it that it lost its slots (milliseconds; hundreds of them on a
// starved machine). A read in that window gets the old value from the old master, with
// or without the near cache, and the near cache's probe finds a master there too. So a
// read may return a value replaced by a write acknowledged after CLUSTER FAILOVER was
// sent if it began before the old master was seen demoted (plus MaxStaleness) and the
// driver's client still routed the key to the old master when it returned (a route
// only moves forward, so it did when the read began): those are counted and logged
// apart. A stale read while the client routed to the new master is the near cache's
// fault, and fails the test, as does any other read beyond MaxStaleness.
func TestNearClusterFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("about 10 s")
	}
	cl := redistest.StartCluster(t)
	const key = "clfail"
	rep := addReplica(t, cl, key)
	c, d := newNear(t, rediscache.Options{URL: cl.URL()}, rediscache.NearOptions{})
	other := plain(t, cl.URL())
	old, err := other.(*redis.ClusterClient).MasterForKey(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	waitFresh(t, d)
	var sent, demoted atomic.Int64 // UnixNano
	dc := d.Client().(*redis.ClusterClient)
	excused := func(start, replaced int64) bool {
		s, dm := sent.Load(), demoted.Load()
		if s == 0 || replaced < s || dm != 0 && start > dm+int64(nearWindow) {
			return false
		}
		m, err := dc.MasterForKey(context.Background(), key)
		return err == nil && m.Options().Addr == old.Options().Addr
	}
	coherenceExcusing(t, c, other, key, 6*time.Second, func() {
		sent.Store(time.Now().UnixNano())
		if err := rep.Do(context.Background(), "cluster", "failover").Err(); err != nil {
			t.Fatalf("CLUSTER FAILOVER: %v", err)
		}
		waitUntil(t, "the old master is a replica", func() bool {
			role, err := old.Do(context.Background(), "role").Slice()
			if err == nil && len(role) > 0 && role[0] != "master" {
				demoted.Store(time.Now().UnixNano())
				return true
			}
			return false
		})
		waitUntil(t, "the replica is a master", func() bool {
			role, err := rep.Do(context.Background(), "role").Slice()
			return err == nil && len(role) > 0 && role[0] == "master"
		})
		t.Logf("CLUSTER FAILOVER: %s took over from %s, seen demoted %v after the command was sent",
			rep.Options().Addr, old.Options().Addr, time.Duration(demoted.Load()-sent.Load()))
	}, excused)
	waitFresh(t, d)
}
