// Package promcache exports a cache's metrics ([cache.Cache.Metrics]) to Prometheus. It
// is a module of its own, so that the cache module does not depend on client_golang.
//
//	c, err := cache.New(cache.Config{Drivers: drivers, Metrics: true})
//	// or registry.FromEnv() with CACHE_METRICS=true
//	col, err := promcache.NewCollector(c, "myapp")
//	if err != nil {
//		return err // the cache's metrics are off
//	}
//	prometheus.MustRegister(col)
//
// The collector reads a snapshot on each scrape; it adds nothing to the cache's calls
// beyond what Config.Metrics costs. A cache built without Config.Metrics counts nothing,
// so [NewCollector] refuses it with [ErrMetricsOff] rather than export no series. With
// namespace "myapp" it exports, per driver (label driver):
//
//	myapp_cache_hits_total                counter
//	myapp_cache_misses_total              counter
//	myapp_cache_sets_total                counter
//	myapp_cache_removes_total             counter
//	myapp_cache_flushes_total             counter
//	myapp_cache_errors_total              counter
//	myapp_cache_locks_acquired_total      counter
//	myapp_cache_locks_contended_total     counter
//	myapp_cache_locks_released_total      counter
//	myapp_cache_locks_lost_total          counter
//	myapp_cache_expired_total             counter (memory, lru and file drivers; Redis: 0)
//
// Hits and misses count every read: Get, GetAs, Has, Many, and the reads of Remember,
// Once and SWR. Per driver and timed operation (labels driver, op):
//
//	myapp_cache_latency_seconds{quantile="0.5"|"0.95"|"0.99"}  gauge
//	myapp_cache_latency_samples_total                          counter
//
// The timed operations are those whose latency the cache samples (a driver's
// [cache.Metrics] Ops: Get, Set, Remember, SWR, Once, Lock and others), on about one
// call in 64; their percentiles come from a log-linear histogram (within 19% of the true
// value), over everything since the cache started: they are not a moving window. The
// counters only grow.
// Errors that happen before a driver is chosen (an unknown driver name) count in no
// driver's series.
package promcache

import (
	"errors"
	"maps"
	"slices"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cachekit/cache"
)

// collector is the prometheus.Collector of one cache.
type collector struct {
	c           *cache.Cache
	counters    []counterDesc
	latency     *prometheus.Desc
	samples     *prometheus.Desc
	breakerOpen *prometheus.Desc
}

type counterDesc struct {
	desc *prometheus.Desc
	get  func(cache.Metrics) int64
}

// ErrMetricsOff: the cache was built without metrics, so a collector would export no
// series at all.
var ErrMetricsOff = errors.New("promcache: cache metrics are off: set cache.Config.Metrics (or CACHE_METRICS=true with registry.FromEnv)")

// NewCollector returns a collector of c's metrics, named under namespace ("" for
// none): namespace_cache_hits_total, ... Register it with a prometheus.Registerer.
// Several caches need distinct namespaces, or a registry each. A cache whose metrics are
// off (no Config.Metrics) is refused with [ErrMetricsOff].
func NewCollector(c *cache.Cache, namespace string) (prometheus.Collector, error) {
	if c == nil {
		return nil, errors.New("promcache: NewCollector: the cache is nil")
	}
	if c.Metrics().Since.IsZero() { // Since is set when the cache counts
		return nil, ErrMetricsOff
	}
	name := func(n string) string { return prometheus.BuildFQName(namespace, "cache", n) }
	byDriver := []string{"driver"}
	counter := func(n, help string, get func(cache.Metrics) int64) counterDesc {
		return counterDesc{desc: prometheus.NewDesc(name(n), help, byDriver, nil), get: get}
	}
	return &collector{
		c: c,
		counters: []counterDesc{
			counter("hits_total", "Reads that found a value.", func(x cache.Metrics) int64 { return x.Hits }),
			counter("misses_total", "Reads that found no value.", func(x cache.Metrics) int64 { return x.Misses }),
			counter("sets_total", "Writes that wrote.", func(x cache.Metrics) int64 { return x.Sets }),
			counter("removes_total", "Keys removed (Remove, Pull).", func(x cache.Metrics) int64 { return x.Removes }),
			counter("flushes_total", "Flushes and namespace removals.", func(x cache.Metrics) int64 { return x.Flushes }),
			counter("errors_total", "Operations that failed (a miss is not an error).", func(x cache.Metrics) int64 { return x.Errors }),
			counter("locks_acquired_total", "Locks taken.", func(x cache.Metrics) int64 { return x.LockAcquired }),
			counter("locks_contended_total", "Lock attempts that found the lock held by another holder.", func(x cache.Metrics) int64 { return x.LockContended }),
			counter("locks_released_total", "Locks released by their holder.", func(x cache.Metrics) int64 { return x.LockReleased }),
			counter("locks_lost_total", "Locks that ended while their holder's function ran.", func(x cache.Metrics) int64 { return x.LockLost }),
			counter("expired_total", "Entries the driver dropped because their TTL passed (not reported by Redis).", func(x cache.Metrics) int64 { return x.Expired }),
			counter("breaker_opened_total", "Times the driver's circuit breaker opened: its store did not answer.", func(x cache.Metrics) int64 { return x.BreakerOpened }),
			counter("breaker_closed_total", "Times the driver's circuit breaker closed: its store answered again.", func(x cache.Metrics) int64 { return x.BreakerClosed }),
			counter("failed_open_total", "Reads that failed and were taken as a miss (fail-open).", func(x cache.Metrics) int64 { return x.FailedOpen }),
		},
		breakerOpen: prometheus.NewDesc(name("breaker_open"),
			"1 while the driver's circuit breaker is open (its store does not answer), else 0.", byDriver, nil),
		latency: prometheus.NewDesc(name("latency_seconds"),
			"Sampled latency of an operation: percentiles (0.5, 0.95, 0.99) since the start.",
			[]string{"driver", "op", "quantile"}, nil),
		samples: prometheus.NewDesc(name("latency_samples_total"),
			"Latency samples taken (about one call in 64).", []string{"driver", "op"}, nil),
	}, nil
}

// Describe sends the descriptions of every metric.
func (col *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, cd := range col.counters {
		ch <- cd.desc
	}
	ch <- col.latency
	ch <- col.samples
	ch <- col.breakerOpen
}

// Collect reads a snapshot and sends its metrics.
func (col *collector) Collect(ch chan<- prometheus.Metric) {
	m := col.c.Metrics()
	for _, drv := range slices.Sorted(maps.Keys(m.Drivers)) {
		dm := m.Drivers[drv]
		for _, cd := range col.counters {
			ch <- prometheus.MustNewConstMetric(cd.desc, prometheus.CounterValue, float64(cd.get(dm)), drv)
		}
		open := 0.0
		if dm.BreakerOpen {
			open = 1
		}
		ch <- prometheus.MustNewConstMetric(col.breakerOpen, prometheus.GaugeValue, open, drv)
		for _, op := range slices.Sorted(maps.Keys(dm.Ops)) {
			l := dm.Ops[op]
			if l.Samples == 0 {
				continue
			}
			ch <- prometheus.MustNewConstMetric(col.samples, prometheus.CounterValue, float64(l.Samples), drv, op)
			for _, q := range []struct {
				name string
				v    float64
			}{{"0.5", l.P50.Seconds()}, {"0.95", l.P95.Seconds()}, {"0.99", l.P99.Seconds()}} {
				ch <- prometheus.MustNewConstMetric(col.latency, prometheus.GaugeValue, q.v, drv, op, q.name)
			}
		}
	}
}
