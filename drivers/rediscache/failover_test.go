package rediscache_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cachekit/cache"
	"github.com/cachekit/cache/drivers/rediscache"
	"github.com/cachekit/cache/internal/testkit/redistest"
)

// The failover tests run on a Sentinel group of their own (a master, a replica, three
// Sentinels) through redis.NewFailoverClient. To make "the master died before the
// replica had the lock" certain rather than a race, the replica is paused (SIGSTOP) and
// the master drops its replication link (CLIENT KILL TYPE replica) before the
// acquisition: a paused replica's kernel would otherwise still take in the write, and
// the replica would apply it when resumed.

// failoverCache is a cache on a failover client of g, with Options.LockReplicas set to
// replicas.
func failoverCache(t *testing.T, g *redistest.SentinelGroup, replicas int) (*cache.Cache, *rediscache.Driver) {
	t.Helper()
	rdb := redis.NewFailoverClient(&redis.FailoverOptions{
		MasterName:            g.MasterName(),
		SentinelAddrs:         g.Addrs(),
		ContextTimeoutEnabled: true,
	})
	t.Cleanup(func() { _ = rdb.Close() })
	d := newDriver(t, rediscache.Options{Client: rdb, LockReplicas: replicas})
	c, err := cache.New(cache.Config{Drivers: map[string]cache.Driver{"redis": d}, Prefix: "fo"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c, d
}

// node runs f with a plain client of one node.
func node(t *testing.T, addr string, f func(c *redis.Client)) {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	defer c.Close()
	f(c)
}

// cutReplica pauses g's replica and has the master drop its replication link, so that
// what the master writes next reaches no replica. It returns the replica's address.
func cutReplica(t *testing.T, g *redistest.SentinelGroup) string {
	t.Helper()
	master := g.Master()
	var replica string
	for _, n := range g.Nodes() {
		if n != master {
			replica = n
		}
	}
	if err := g.Pause(replica); err != nil {
		t.Fatal(err)
	}
	node(t, master, func(c *redis.Client) {
		n, err := c.ClientKillByFilter(context.Background(), "TYPE", "replica").Result()
		if err != nil || n != 1 {
			t.Fatalf("CLIENT KILL TYPE replica on the master: %d, %v; want 1", n, err)
		}
	})
	return replica
}

// failover kills g's master, resumes replica if it is set, and waits for the Sentinels
// to promote the replica. It returns the old master's address.
func failover(t *testing.T, g *redistest.SentinelGroup, replica string) string {
	t.Helper()
	killed, err := g.KillMaster()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if replica != "" {
		if err := g.Resume(replica); err != nil {
			t.Fatal(err)
		}
	}
	newMaster, err := g.WaitFailover(30 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("master %s killed; Sentinels promoted %s after %v", killed, newMaster, time.Since(start).Round(time.Millisecond))
	return killed
}

// acquireAfterFailover calls cache.Acquire until it returns something other than a
// connection error (the failover client may still be switching to the new master).
func acquireAfterFailover(t *testing.T, c *cache.Cache, key string, o cache.LockOptions) (*cache.LockHandle, error) {
	t.Helper()
	ctx := context.Background()
	var errs int
	for deadline := time.Now().Add(time.Minute); ; { // a hang detector: a failover takes seconds
		actx, cancel := context.WithTimeout(ctx, 2*time.Second)
		h, err := cache.Acquire(actx, c, key, o)
		cancel()
		if err == nil || errors.Is(err, cache.ErrNotAcquired) || errors.Is(err, rediscache.ErrNotReplicated) || time.Now().After(deadline) {
			if errs > 0 {
				t.Logf("Acquire after the failover: %d connection errors first", errs)
			}
			return h, err
		}
		errs++
		time.Sleep(50 * time.Millisecond)
	}
}

// TestFailoverLosesUnreplicatedLock demonstrates the documented hazard of asynchronous
// replication, without LockReplicas: a lock acquired on the master, which dies before
// its replica has the write, is gone after the failover, and a second Acquire succeeds:
// two holders. The fencing number of the second holder is still above the first's,
// although the counter was lost with the master: the numbers follow the server's clock.
func TestFailoverLosesUnreplicatedLock(t *testing.T) {
	g := redistest.StartSentinelGroup(t)
	c, _ := failoverCache(t, g, 0)
	ctx := context.Background()
	o := cache.LockOptions{TTL: time.Minute, Fencing: true, Owner: "first"}

	replica := cutReplica(t, g)
	h1, err := cache.Acquire(ctx, c, "lock.job", o)
	if err != nil {
		t.Fatalf("Acquire on the master: %v", err)
	}
	failover(t, g, replica)

	o.Owner = "second"
	h2, err := acquireAfterFailover(t, c, "lock.job", o)
	if err != nil {
		t.Fatalf("second Acquire after the failover: %v; want it to succeed (the lock was lost with the master)", err)
	}
	t.Logf("documented hazard: the lock taken by %s (fencing number %d) was lost with the master; %s acquired it after the failover (fencing number %d): two holders",
		h1.Token(), h1.FencingToken(), h2.Token(), h2.FencingToken())
	if h2.FencingToken() <= h1.FencingToken() {
		t.Fatalf("fencing number after the failover %d, not above %d before it", h2.FencingToken(), h1.FencingToken())
	}
	if err := h1.Release(ctx); err == nil {
		t.Fatal("the first holder's Release succeeded: its lock should be gone")
	}
	if err := h2.Release(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestFailoverLockReplicas: with LockReplicas 1, an acquisition that the replica cannot
// acknowledge (paused, link dropped) fails with ErrNotReplicated and leaves no key; once
// the replica is back, a lock acquired on the master survives the master's death and the
// failover: a second Acquire on the promoted replica gets ErrNotAcquired, the lock keeps
// its expiry, its holder can still release it, and the next fencing number is above the
// one before the failover.
func TestFailoverLockReplicas(t *testing.T) {
	g := redistest.StartSentinelGroup(t)
	c, _ := failoverCache(t, g, 1)
	ctx := context.Background()
	o := cache.LockOptions{TTL: time.Minute, Fencing: true, Owner: "first"}
	const key = "fo.lock.job"

	replica := cutReplica(t, g)
	for _, fencing := range []bool{false, true} {
		o.Fencing = fencing
		start := time.Now()
		_, err := cache.Acquire(ctx, c, "lock.job", o)
		t.Logf("Acquire (Fencing %v) with the replica cut off: %v after %v", fencing, err, time.Since(start).Round(time.Millisecond))
		if !errors.Is(err, rediscache.ErrNotReplicated) || errors.Is(err, cache.ErrNotAcquired) {
			t.Fatalf("Acquire with the replica cut off: %v; want ErrNotReplicated, not ErrNotAcquired", err)
		}
		node(t, g.Master(), func(m *redis.Client) {
			if n := m.Exists(ctx, key).Val(); n != 0 {
				t.Fatal("the acquisition that was not replicated left its key on the master")
			}
		})
	}
	o.Fencing = true

	if err := g.Resume(replica); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	node(t, replica, func(r *redis.Client) {
		for !strings.Contains(r.Info(ctx, "replication").Val(), "master_link_status:up") {
			if time.Since(start) > time.Minute { // a hang detector: it takes a second or two
				t.Fatal("the replica did not reconnect to the master within a minute")
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
	t.Logf("replica resumed and in sync again after %v", time.Since(start).Round(time.Millisecond))

	start = time.Now()
	h1, err := cache.Acquire(ctx, c, "lock.job", o)
	if err != nil {
		t.Fatalf("Acquire with the replica live: %v", err)
	}
	t.Logf("Acquire with the replica live (SET and WAIT 1): %v, fencing number %d", time.Since(start).Round(time.Microsecond), h1.FencingToken())
	node(t, replica, func(r *redis.Client) {
		if n := r.Exists(ctx, key).Val(); n != 1 {
			t.Fatal("the replica does not have the lock that WAIT said it acknowledged")
		}
	})
	killed := failover(t, g, "")

	o.Owner = "second"
	_, err = acquireAfterFailover(t, c, "lock.job", o)
	if !errors.Is(err, cache.ErrNotAcquired) {
		t.Fatalf("second Acquire after the failover: %v; want ErrNotAcquired (the lock was on the replica)", err)
	}
	t.Logf("second Acquire after the failover: %v", err)
	node(t, g.Master(), func(m *redis.Client) {
		ttl := m.PTTL(ctx, key).Val()
		t.Logf("the lock's TTL on the new master: %v", ttl)
		if ttl <= 0 || ttl > time.Minute {
			t.Fatalf("the lock's TTL on the new master: %v; want its expiry kept (0 < TTL <= 1m)", ttl)
		}
	})
	if err := h1.Release(ctx); err != nil {
		t.Fatalf("the holder's Release on the new master: %v", err)
	}

	// The new master has no replica until the old one is back: acquisitions fail.
	if _, err := cache.Acquire(ctx, c, "lock.job", o); !errors.Is(err, rediscache.ErrNotReplicated) {
		t.Fatalf("Acquire on a master without a replica: %v; want ErrNotReplicated", err)
	}
	if err := g.RestartOld(killed); err != nil {
		t.Fatal(err)
	}
	h2, err := acquireAfterFailover(t, c, "lock.job", o)
	for deadline := time.Now().Add(15 * time.Second); errors.Is(err, rediscache.ErrNotReplicated) && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
		h2, err = cache.Acquire(ctx, c, "lock.job", o)
	}
	if err != nil {
		t.Fatalf("Acquire once the old master is back as a replica: %v", err)
	}
	t.Logf("fencing numbers: %d before the failover, %d after it", h1.FencingToken(), h2.FencingToken())
	if h2.FencingToken() <= h1.FencingToken() {
		t.Fatalf("fencing number after the failover %d, not above %d before it", h2.FencingToken(), h1.FencingToken())
	}
	if err := h2.Release(ctx); err != nil {
		t.Fatal(err)
	}
}
