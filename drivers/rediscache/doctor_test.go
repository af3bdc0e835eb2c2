package rediscache_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cachekit/cache"
	"github.com/cachekit/cache/driver"
	"github.com/cachekit/cache/drivers/rediscache"
	"github.com/cachekit/cache/internal/testkit/redistest"
)

// finding returns the finding of check, failing t if there is none.
func finding(t *testing.T, fs []driver.Finding, check string) driver.Finding {
	t.Helper()
	for _, f := range fs {
		if f.Check == check {
			return f
		}
	}
	t.Fatalf("no %q finding in %v", check, fs)
	return driver.Finding{}
}

func doctor(t *testing.T, o rediscache.Options) []driver.Finding {
	t.Helper()
	fs := newDriver(t, o).Doctor(context.Background())
	for _, f := range fs {
		t.Log(f)
	}
	return fs
}

// wantFinding checks the severity of check's finding and that its message holds each of
// words.
func wantFinding(t *testing.T, fs []driver.Finding, check string, sev driver.Severity, words ...string) {
	t.Helper()
	f := finding(t, fs, check)
	if f.Severity != sev {
		t.Errorf("%s: severity %v, want %v: %v", check, f.Severity, sev, f)
	}
	for _, w := range words {
		if !strings.Contains(f.Message, w) {
			t.Errorf("%s: message %q does not say %q", check, f.Message, w)
		}
	}
	if sev != driver.SeverityOK && f.Fix == "" {
		t.Errorf("%s: a %v without a fix: %v", check, sev, f)
	}
}

func TestDoctorEvictingPolicy(t *testing.T) {
	for _, tc := range []struct {
		policy string
		words  []string
	}{
		{"allkeys-lru", []string{"allkeys-lru", "100mb", "second holder"}},
		{"volatile-ttl", []string{"volatile-ttl", "locks go first"}},
	} {
		t.Run(tc.policy, func(t *testing.T) {
			srv := redistest.StartWith(t, "--maxmemory", "100mb", "--maxmemory-policy", tc.policy)
			fs := doctor(t, rediscache.Options{URL: srv.URL()})
			wantFinding(t, fs, "maxmemory-policy", driver.SeverityError, tc.words...)
			if w := driver.Worst(fs); w != driver.SeverityError {
				t.Errorf("Worst = %v, want error", w)
			}
		})
	}
}

func TestDoctorEvictingPolicyWithoutLimit(t *testing.T) {
	srv := redistest.StartWith(t, "--maxmemory-policy", "allkeys-lfu")
	wantFinding(t, doctor(t, rediscache.Options{URL: srv.URL()}), "maxmemory-policy", driver.SeverityWarning, "none is set")
}

func TestDoctorAllGood(t *testing.T) {
	srv := redistest.StartWith(t, "--maxmemory", "100mb", "--maxmemory-policy", "noeviction", "--appendonly", "yes")
	fs := doctor(t, rediscache.Options{URL: srv.URL()})
	if w := driver.Worst(fs); w != driver.SeverityOK {
		t.Errorf("Worst = %v, want ok", w)
	}
	for _, check := range []string{"topology", "version", "tracking", "maxmemory-policy", "persistence", "replicas"} {
		wantFinding(t, fs, check, driver.SeverityOK)
	}
	wantFinding(t, fs, "persistence", driver.SeverityOK, "appendonly yes")
	wantFinding(t, fs, "maxmemory-policy", driver.SeverityOK, "noeviction", "100mb")
}

func TestDoctorPersistence(t *testing.T) {
	t.Run("none", func(t *testing.T) {
		srv := redistest.StartWith(t) // save "" and appendonly no
		wantFinding(t, doctor(t, rediscache.Options{URL: srv.URL()}), "persistence", driver.SeverityWarning, "no persistence", "Once runs again")
	})
	t.Run("snapshots", func(t *testing.T) {
		srv := redistest.StartWith(t, "--save", "3600 1")
		wantFinding(t, doctor(t, rediscache.Options{URL: srv.URL()}), "persistence", driver.SeverityWarning, "RDB snapshots only", "3600 1")
	})
}

func TestDoctorReplicas(t *testing.T) {
	master := redistest.StartWith(t, "--appendonly", "yes")
	host, port, _ := net.SplitHostPort(master.Addr())
	replica := redistest.StartWith(t, "--replicaof", host, port)
	t.Run("LockReplicas without replicas", func(t *testing.T) {
		srv := redistest.StartWith(t)
		wantFinding(t, doctor(t, rediscache.Options{URL: srv.URL(), LockReplicas: 1}), "replicas", driver.SeverityError, "LockReplicas 1", "0 replicas connected")
	})
	waitReplica(t, master)
	t.Run("replicas without LockReplicas", func(t *testing.T) {
		wantFinding(t, doctor(t, rediscache.Options{URL: master.URL()}), "replicas", driver.SeverityWarning, "1 replica connected", "LockReplicas 0")
	})
	t.Run("LockReplicas with replicas", func(t *testing.T) {
		wantFinding(t, doctor(t, rediscache.Options{URL: master.URL(), LockReplicas: 1}), "replicas", driver.SeverityOK, "LockReplicas 1")
	})
	t.Run("a replica", func(t *testing.T) {
		wantFinding(t, doctor(t, rediscache.Options{URL: replica.URL()}), "replicas", driver.SeverityError, "replica", "READONLY")
	})
}

// waitReplica waits until master counts a connected replica: a hang detector, not a
// latency bound.
func waitReplica(t *testing.T, master *redistest.Server) {
	t.Helper()
	d := newDriver(t, rediscache.Options{URL: master.URL()})
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		info, _ := d.Client().Info(context.Background(), "replication").Result()
		if strings.Contains(info, "connected_slaves:1") {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("the replica did not connect within a minute (hang detector)")
}

func TestDoctorCluster(t *testing.T) {
	fs := doctor(t, rediscache.Options{URL: redistest.ClusterURL(t)})
	wantFinding(t, fs, "topology", driver.SeverityOK, "Cluster of", "state ok")
	if f := finding(t, fs, "maxmemory-policy"); !strings.HasPrefix(f.Message, "node ") {
		t.Errorf("a Cluster's node finding does not name its node: %v", f)
	}
}

func TestDoctorUnreachable(t *testing.T) {
	srv := redistest.StartWith(t)
	url := srv.URL()
	srv.Stop()
	fs := doctor(t, rediscache.Options{URL: url})
	wantFinding(t, fs, "connection", driver.SeverityError, "cannot reach Redis")
}

// TestCheckOnStart: with cache.Config.CheckOnStart the manager runs the driver's checks
// once and reports each warning and error as an EventFinding, whose Err is the finding
// (errors.As recovers it); without it, no check runs and no finding is reported. The two
// caches share the driver and start together, so once the first has its findings the
// second would have had them too.
func TestCheckOnStart(t *testing.T) {
	srv := redistest.StartWith(t, "--maxmemory", "100mb", "--maxmemory-policy", "allkeys-lru")
	d := newDriver(t, rediscache.Options{URL: srv.URL()})
	newCache := func(on bool, got chan cache.Event) *cache.Cache {
		c, err := cache.New(cache.Config{
			Drivers:      map[string]cache.Driver{"redis": d},
			CheckOnStart: on,
			Hooks: []cache.Hook{{Kinds: []cache.EventKind{cache.EventFinding}, Observe: func(e cache.Event) {
				select {
				case got <- e:
				default:
				}
			}}},
		})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	got, none := make(chan cache.Event, 64), make(chan cache.Event, 64)
	off := newCache(false, none)
	on := newCache(true, got)
	checks := map[string]driver.Finding{}
	timeout := time.After(time.Minute) // a hang detector
	for checks["maxmemory-policy"].Check == "" || checks["persistence"].Check == "" {
		select {
		case e := <-got:
			var f driver.Finding
			if !errors.As(e.Err, &f) {
				t.Fatalf("the finding event's Err %#v is not a driver.Finding", e.Err)
			}
			if e.Kind != cache.EventFinding || e.Op != "Doctor" || e.Driver != "redis" || e.Key != f.Check || f.Severity == driver.SeverityOK {
				t.Errorf("finding event %+v", e)
			}
			checks[f.Check] = f
		case <-timeout:
			t.Fatalf("after a minute the findings were %v; want maxmemory-policy and persistence", checks)
		}
	}
	if f := checks["maxmemory-policy"]; f.Severity != driver.SeverityError || !strings.Contains(f.Message, "allkeys-lru") {
		t.Errorf("maxmemory-policy finding %v; want an error that names allkeys-lru", f)
	}
	if checks["persistence"].Severity != driver.SeverityWarning {
		t.Errorf("persistence finding %v; want a warning", checks["persistence"])
	}
	if err := on.Close(); err != nil {
		t.Fatal(err)
	}
	if err := off.Close(); err != nil {
		t.Fatal(err)
	}
	if len(none) > 0 {
		t.Errorf("a finding without CheckOnStart: %+v", <-none)
	}
}

func TestDoctorSentinel(t *testing.T) {
	g := redistest.StartSentinelGroup(t)
	rdb := redis.NewFailoverClient(&redis.FailoverOptions{MasterName: g.MasterName(), SentinelAddrs: g.Addrs()})
	t.Cleanup(func() { _ = rdb.Close() })
	fs := doctor(t, rediscache.Options{Client: rdb})
	wantFinding(t, fs, "topology", driver.SeverityOK, "Sentinel-managed master")
	wantFinding(t, fs, "replicas", driver.SeverityWarning, "1 replica connected", "LockReplicas 0")
	fs = doctor(t, rediscache.Options{Client: rdb, LockReplicas: 1})
	wantFinding(t, fs, "replicas", driver.SeverityOK, "LockReplicas 1, 1 replica connected")
}

func TestDoctorRing(t *testing.T) {
	a, b := redistest.StartWith(t), redistest.StartWith(t)
	ring := redis.NewRing(&redis.RingOptions{Addrs: map[string]string{"a": a.Addr(), "b": b.Addr()}})
	t.Cleanup(func() { _ = ring.Close() })
	fs := doctor(t, rediscache.Options{Client: ring})
	wantFinding(t, fs, "topology", driver.SeverityWarning, "client-side sharding")
	if f := finding(t, fs, "persistence"); !strings.HasPrefix(f.Message, "node ") {
		t.Errorf("a Ring's node finding does not name its shard: %v", f)
	}
}

func TestDoctorNear(t *testing.T) {
	srv := redistest.StartWith(t)
	fs := doctor(t, rediscache.Options{URL: srv.URL(), Near: &rediscache.NearOptions{}})
	wantFinding(t, fs, "tracking", driver.SeverityOK, "the near cache is on")
}
