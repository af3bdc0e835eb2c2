package rediscache_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cachekit/cache/driver"
	"github.com/cachekit/cache/drivers/rediscache"
	"github.com/cachekit/cache/drivertest"
	"github.com/cachekit/cache/internal/redistest"
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
	fo := func() *redis.Client {
		c := redis.NewFailoverClient(&redis.FailoverOptions{MasterName: g.MasterName(), SentinelAddrs: g.Addrs(), ContextTimeoutEnabled: true})
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
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
