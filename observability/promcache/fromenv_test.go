package promcache_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cachekit/cache"
	_ "github.com/cachekit/cache/drivers/rediscache" // registers redis://
	"github.com/cachekit/cache/observability/promcache"
	"github.com/cachekit/cache/registry"
)

// TestFromEnvRedis is what a service configured by the environment sees: a Redis named
// by CACHE_DRIVERS, metrics turned on with CACHE_METRICS=true, the cache built by
// registry.FromEnv, and promcache serving /metrics. Each operation (Get, Set, Remember,
// Lock, Once, SWR) moves the counters it should, and the timed operations have latency
// series.
func TestFromEnvRedis(t *testing.T) {
	url := startRedis(t)
	t.Setenv("CACHE_DRIVERS", url)
	t.Setenv("CACHE_METRICS", "true")
	t.Setenv("CACHE_PREFIX", "promtest")
	t.Setenv("CACHE_DEFAULT", "")
	c, err := registry.FromEnv()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	reg := prometheus.NewPedanticRegistry()
	col, err := promcache.NewCollector(c, "svc")
	if err != nil {
		t.Fatalf("NewCollector of a cache from FromEnv with CACHE_METRICS=true: %v", err)
	}
	reg.MustRegister(col)
	ctx := context.Background()

	series := func(got map[string]float64, name string) float64 {
		return got[`svc_cache_`+name+`{driver="default"}`]
	}
	// step runs op and checks that each counter moved by at least its delta.
	step := func(name string, op func() error, deltas map[string]float64) {
		t.Helper()
		before, _ := scrape(t, reg)
		if err := op(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		after, _ := scrape(t, reg)
		for counter, d := range deltas {
			if got := series(after, counter) - series(before, counter); got < d {
				t.Errorf("%s: %s moved by %v; want at least %v", name, counter, got, d)
			}
		}
	}
	load := func(v string) func(context.Context) (string, error) {
		return func(context.Context) (string, error) { return v, nil }
	}

	step("Set", func() error { return c.Set(ctx, "user.1", "Ada", time.Minute) }, map[string]float64{"sets_total": 1})
	step("Get hit", func() error { _, err := c.Get(ctx, "user.1", new(string)); return err }, map[string]float64{"hits_total": 1})
	step("Get miss", func() error { _, err := c.Get(ctx, "user.2", new(string)); return err }, map[string]float64{"misses_total": 1})
	step("Remember miss", func() error { _, err := cache.Remember(ctx, c, "report", time.Minute, load("r")); return err },
		map[string]float64{"misses_total": 1, "sets_total": 1})
	step("Remember hit", func() error { _, err := cache.Remember(ctx, c, "report", time.Minute, load("r")); return err },
		map[string]float64{"hits_total": 1})
	step("Lock", func() error {
		_, err := cache.Lock(ctx, c, "lock.job", time.Minute, func(context.Context) (int, error) { return 1, nil })
		return err
	}, map[string]float64{"locks_acquired_total": 1, "locks_released_total": 1})
	step("Lock contended", func() error {
		h, err := cache.Acquire(ctx, c, "lock.held", cache.LockOptions{TTL: time.Minute})
		if err != nil {
			return err
		}
		defer h.Release(ctx)
		out, err := cache.Lock(ctx, c, "lock.held", time.Minute, func(context.Context) (int, error) { return 1, nil })
		if err == nil && out.Acquired {
			err = fmt.Errorf("a held lock was acquired")
		}
		return err
	}, map[string]float64{"locks_contended_total": 1})
	step("Once first", func() error { _, err := cache.Once(ctx, c, "webhook.evt_1", time.Hour, load("done")); return err },
		map[string]float64{"misses_total": 1})
	step("Once again", func() error {
		out, err := cache.Once(ctx, c, "webhook.evt_1", time.Hour, load("again"))
		if err == nil && out.Ran {
			err = fmt.Errorf("Once ran twice")
		}
		return err
	}, map[string]float64{"hits_total": 1})
	swr := cache.SWROptions{Fresh: time.Minute, Stale: time.Hour}
	step("SWR cold", func() error { _, err := cache.SWR(ctx, c, "feed", swr, load("f")); return err },
		map[string]float64{"misses_total": 1})
	step("SWR fresh", func() error { _, err := cache.SWR(ctx, c, "feed", swr, load("f")); return err },
		map[string]float64{"hits_total": 1})

	// Calls of each operation until the cache has sampled its latency (about one call
	// in 64, not at fixed places), one operation after the other.
	for _, op := range []struct {
		name string
		call func(i int)
	}{
		{"Set", func(i int) { _ = c.Set(ctx, "k", i, time.Minute) }},
		{"Get", func(int) { _, _ = c.Get(ctx, "k", new(int)) }},
		{"Remember", func(int) { _, _ = cache.Remember(ctx, c, "report", time.Minute, load("r")) }},
		{"SWR", func(int) { _, _ = cache.SWR(ctx, c, "feed", swr, load("f")) }},
		{"Once", func(int) { _, _ = cache.Once(ctx, c, "webhook.evt_1", time.Hour, load("done")) }},
		{"Lock", func(int) {
			_, _ = cache.Lock(ctx, c, "lock.job", time.Minute, func(context.Context) (int, error) { return 1, nil })
		}},
	} {
		for i := 0; i < 4096 && c.Metrics().Drivers["default"].Ops[op.name].Samples < 2; i++ {
			op.call(i)
		}
	}

	got, body := scrape(t, reg)
	for _, name := range []string{"hits_total", "misses_total", "sets_total", "locks_acquired_total"} {
		if v := series(got, name); v < 1 {
			t.Errorf("svc_cache_%s = %v; want > 0\n%s", name, v, body)
		}
	}
	if series(got, "errors_total") != 0 {
		t.Errorf("errors_total = %v; want 0", series(got, "errors_total"))
	}
	latency := func(op string) bool {
		ok := true
		for _, q := range []string{"0.5", "0.95", "0.99"} {
			v, present := got[`svc_cache_latency_seconds{driver="default",op="`+op+`",quantile="`+q+`"}`]
			ok = ok && present && v > 0 && v < 5
		}
		return ok && got[`svc_cache_latency_samples_total{driver="default",op="`+op+`"}`] >= 1
	}
	// Every operation has its latency series.
	for _, op := range []string{"Get", "Set", "Remember", "Lock", "Once", "SWR"} {
		if !latency(op) {
			t.Errorf("no latency series for %s in /metrics:\n%s", op, body)
		}
	}
}

// startRedis starts a redis-server of the test's own on a free loopback port, stopped at
// the end of the test, and returns its URL. Without redis-server on PATH the test skips,
// except in CI (CI set), where that is a failure.
func startRedis(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("redis-server is not on PATH (CI is set, so this fails instead of skipping): %v", err)
		}
		t.Skip("redis-server is not on PATH")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	_, port, _ := net.SplitHostPort(addr)
	cmd := exec.Command(bin, "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", t.TempDir())
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		if ping(addr) == nil {
			return "redis://" + addr + "/0"
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis-server on %s did not answer PING within 10s: %v", addr, ping(addr))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ping sends PING in the Redis protocol and reads +PONG.
func ping(addr string) error {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(time.Second))
	if _, err := conn.Write([]byte("*1\r\n$4\r\nPING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return err
	}
	if line != "+PONG\r\n" {
		return fmt.Errorf("PING answered %q", line)
	}
	return nil
}
