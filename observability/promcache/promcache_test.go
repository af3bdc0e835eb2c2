package promcache_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/cachekit/cache"
	"github.com/cachekit/cache/drivers/memorycache"
	"github.com/cachekit/cache/observability/promcache"
)

func newCache(t *testing.T, metrics bool) *cache.Cache {
	t.Helper()
	mem, err := memorycache.New(memorycache.Options{})
	if err != nil {
		t.Fatal(err)
	}
	lru, err := memorycache.New(memorycache.Options{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := cache.New(cache.Config{Drivers: map[string]cache.Driver{"mem": mem, "other": lru}, Default: "mem", Metrics: metrics})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// scrape serves the registry's /metrics through promhttp and returns the samples by
// their series ("name{labels}") .
func scrape(t *testing.T, reg *prometheus.Registry) (map[string]float64, string) {
	t.Helper()
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.HTTPErrorOnError}))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s: %s", resp.Status, body)
	}
	out := map[string]float64{}
	for line := range strings.Lines(string(body)) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("bad sample %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out, string(body)
}

func TestMetricsEndpoint(t *testing.T) {
	c := newCache(t, true)
	ctx := context.Background()
	reg := prometheus.NewPedanticRegistry() // also checks the collector's consistency
	reg.MustRegister(collector(t, c, "myapp"))

	if err := c.Set(ctx, "k", "v", time.Minute); err != nil {
		t.Fatal(err)
	}
	var s string
	for range 2000 { // latency is sampled at random on about one call in 64: 2000 hits miss it with odds of 1 in 10^13
		if _, err := c.Get(ctx, "k", &s); err != nil {
			t.Fatal(err)
		}
	}
	for range 3 {
		_, _ = c.Get(ctx, "missing", &s)
	}
	var n int
	_, _ = c.Get(ctx, "k", &n) // an error: a string into an int
	_ = c.Remove(ctx, "gone")

	h, err := cache.Acquire(ctx, c, "lock.job", cache.LockOptions{TTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cache.Acquire(ctx, c, "lock.job", cache.LockOptions{TTL: time.Minute}); !errors.Is(err, cache.ErrNotAcquired) {
		t.Fatalf("second Acquire: %v", err)
	}
	if err := h.Release(ctx); err != nil {
		t.Fatal(err)
	}
	// A lock lost: its TTL runs out while fn runs.
	_, _ = cache.Lock(ctx, c, "lock.slow", 20*time.Millisecond, func(ctx context.Context) (int, error) {
		<-ctx.Done()
		// fn's ctx ends at the TTL; the store's clock (1 ms coarse on the memory driver)
		// may still count the lock live for a moment, and then the release would find
		// and delete it. Outlive the TTL for sure, so the release finds nothing.
		time.Sleep(30 * time.Millisecond)
		return 0, nil
	})
	other, err := c.Driver("other")
	if err != nil {
		t.Fatal(err)
	}
	_, _ = other.Get(ctx, "x", &s)

	got, body := scrape(t, reg)
	for series, want := range map[string]float64{
		`myapp_cache_hits_total{driver="mem"}`:             2000,
		`myapp_cache_misses_total{driver="mem"}`:           3,
		`myapp_cache_sets_total{driver="mem"}`:             1,
		`myapp_cache_removes_total{driver="mem"}`:          1,
		`myapp_cache_errors_total{driver="mem",op="Get"}`:  1,
		`myapp_cache_flushes_total{driver="mem"}`:          0,
		`myapp_cache_locks_acquired_total{driver="mem"}`:   2,
		`myapp_cache_locks_contended_total{driver="mem"}`:  1,
		`myapp_cache_locks_released_total{driver="mem"}`:   1, // the lost lock had expired: nothing to release
		`myapp_cache_locks_lost_total{driver="mem"}`:       1,
		`myapp_cache_expired_total{driver="mem"}`:          1, // the lost lock's entry, dropped for its TTL
		`myapp_cache_near_hits_total{driver="mem"}`:        0, // the memory driver has no near tier
		`myapp_cache_failed_open_total{driver="mem"}`:      0,
		`myapp_cache_misses_total{driver="other"}`:         1,
		`myapp_cache_hits_total{driver="other"}`:           0,
		`myapp_cache_locks_acquired_total{driver="other"}`: 0,
	} {
		if v, ok := got[series]; !ok || v != want {
			t.Errorf("%s = %v (present %v); want %v", series, v, ok, want)
		}
	}
	for _, q := range []string{"0.5", "0.95", "0.99"} {
		series := `myapp_cache_latency_seconds{driver="mem",op="Get",quantile="` + q + `"}`
		if v, ok := got[series]; !ok || v <= 0 || v > 1 {
			t.Errorf("%s = %v (present %v); want a positive latency", series, v, ok)
		}
	}
	if v := got[`myapp_cache_latency_samples_total{driver="mem",op="Get"}`]; v < 1 || v > 2004 {
		t.Errorf("Get latency samples = %v; want 1..2004", v)
	}
	if !strings.Contains(body, "# TYPE myapp_cache_hits_total counter") || !strings.Contains(body, "# TYPE myapp_cache_latency_seconds gauge") {
		t.Errorf("types missing from /metrics:\n%s", body)
	}
}

// TestMetricsOff: a cache without Config.Metrics counts nothing; NewCollector refuses it
// and says what to set, instead of a collector that exports no series.
func TestMetricsOff(t *testing.T) {
	c := newCache(t, false)
	col, err := promcache.NewCollector(c, "")
	if !errors.Is(err, promcache.ErrMetricsOff) || col != nil {
		t.Fatalf("NewCollector of a cache without metrics = %v, %v; want ErrMetricsOff", col, err)
	}
	for _, want := range []string{"cache metrics are off", "cache.Config.Metrics", "CACHE_METRICS=true", "registry.FromEnv"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q; want it to say %q", err, want)
		}
	}
	if _, err := promcache.NewCollector(nil, ""); err == nil {
		t.Error("NewCollector(nil) = nil error")
	}
}

// collector is NewCollector for a cache that has metrics.
func collector(t *testing.T, c *cache.Cache, namespace string) prometheus.Collector {
	t.Helper()
	col, err := promcache.NewCollector(c, namespace)
	if err != nil {
		t.Fatal(err)
	}
	return col
}

// TestNoNamespace: the names without a namespace, and two caches in one registry.
func TestNoNamespace(t *testing.T) {
	a, b := newCache(t, true), newCache(t, true)
	reg := prometheus.NewRegistry()
	reg.MustRegister(collector(t, a, ""))
	reg.MustRegister(collector(t, b, "second"))
	_, _ = a.Get(context.Background(), "k", new(string))
	got, _ := scrape(t, reg)
	if got[`cache_misses_total{driver="mem"}`] != 1 || got[`second_cache_misses_total{driver="mem"}`] != 0 {
		t.Errorf("misses: %v", got)
	}
}
