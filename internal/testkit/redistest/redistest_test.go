package redistest_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cachekit/cache/internal/testkit/redistest"
)

func TestMain(m *testing.M) { redistest.Main(m) }

func TestShared(t *testing.T) {
	ctx := context.Background()
	o, err := redis.ParseURL(redistest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(o)
	defer c.Close()
	if err := c.Ping(ctx).Err(); err != nil {
		t.Fatalf("PING %s Redis: %v", redistest.Kind(), err)
	}
	if again := redistest.URL(t); again != redistest.URL(t) {
		t.Fatalf("URL changed between calls: %q", again)
	}
	t.Logf("shared Redis: %s", redistest.Kind())
}

func TestCluster(t *testing.T) {
	ctx := context.Background()
	start := time.Now()
	u := redistest.ClusterURL(t)
	t.Logf("Cluster %s ready in %v", u, time.Since(start))
	o, err := redis.ParseClusterURL(u)
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClusterClient(o)
	defer c.Close()
	var masters atomic.Int32
	if err := c.ForEachMaster(ctx, func(ctx context.Context, n *redis.Client) error {
		masters.Add(1)
		return n.Ping(ctx).Err()
	}); err != nil {
		t.Fatal(err)
	}
	if masters := masters.Load(); masters != 3 {
		t.Errorf("%d masters, want 3", masters)
	}
	// Keys in different slots all work through the cluster client.
	for _, k := range []string{"a", "b", "c", "d", "e"} {
		if err := c.Set(ctx, "redistest."+k, k, time.Minute).Err(); err != nil {
			t.Fatalf("SET %s: %v", k, err)
		}
	}
}

func TestStartStopRestart(t *testing.T) {
	ctx := context.Background()
	s := redistest.Start(t)
	o, _ := redis.ParseURL(s.URL())
	o.MaxRetries = -1
	c := redis.NewClient(o)
	defer c.Close()
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	s.Stop()
	if err := c.Get(ctx, "k").Err(); err == nil {
		t.Fatal("GET on a stopped server: no error")
	}
	s.Restart(t)
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := c.Ping(ctx).Err()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("PING after restart: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n, err := c.Exists(ctx, "k").Result(); err != nil || n != 0 {
		t.Fatalf("EXISTS k after restart = %d, %v; want 0 (a restarted server is empty)", n, err)
	}
}

func TestSentinel(t *testing.T) {
	ctx := context.Background()
	c := redis.NewFailoverClient(&redis.FailoverOptions{
		MasterName:    redistest.SentinelMaster,
		SentinelAddrs: []string{redistest.SentinelAddr(t)},
	})
	defer c.Close()
	if err := c.Set(ctx, "redistest.sentinel", "v", time.Minute).Err(); err != nil {
		t.Fatalf("SET through Sentinel: %v", err)
	}
}
