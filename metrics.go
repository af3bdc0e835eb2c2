package cache

import (
	"maps"
	"math/bits"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// Metrics is a snapshot of the cache's counters, from [Cache.Metrics]. Counters start
// when the cache is made with Config.Metrics; [Cache.ResetMetrics] zeroes them.
type Metrics struct {
	Counters
	// Drivers holds the same per driver, with latencies per operation.
	Drivers map[string]DriverMetrics
	// Since is when counting started.
	Since time.Time
}

// Counters are event counts.
type Counters struct {
	Hits, Misses, Sets, Removes, Flushes, Errors        int64
	LockAcquired, LockContended, LockReleased, LockLost int64
	// HitRate is Hits / (Hits + Misses), or 0 without reads.
	HitRate float64
}

// DriverMetrics are one driver's counters and latencies.
type DriverMetrics struct {
	Counters
	// Ops holds the latency of the timed operations ("Get" and "Set" today), sampled on
	// one call in eight.
	Ops map[string]Latency
}

// Latency summarizes sampled durations. The percentiles come from a log-linear
// histogram: each is within 19% of the true value.
type Latency struct {
	Samples       int64
	P50, P95, P99 time.Duration
}

type metrics struct {
	since   atomic.Pointer[time.Time]
	all     counters
	drivers map[string]*driverMetrics // fixed at New: read without a lock
}

type driverMetrics struct {
	counters
	mu  sync.Mutex
	ops map[string]*histogram
}

// counters are sharded: concurrent operations on several cores mostly add to different
// cache lines, instead of all contending for one.
type counters struct {
	shards [8]struct {
		n [EventLockLost + 1]atomic.Int64
		_ [64]byte // keep shards on separate cache lines
	}
}

func (c *counters) add(k EventKind) { c.shards[rand.Uint32()&7].n[k].Add(1) }

func (c *counters) get(k EventKind) (sum int64) {
	for i := range c.shards {
		sum += c.shards[i].n[k].Load()
	}
	return sum
}

func (c *counters) reset() {
	for i := range c.shards {
		for k := range c.shards[i].n {
			c.shards[i].n[k].Store(0)
		}
	}
}

func newMetrics(names []string) *metrics {
	mt := &metrics{drivers: make(map[string]*driverMetrics, len(names)+1)}
	for _, n := range append(names, "") { // "": errors before a driver was chosen
		mt.drivers[n] = &driverMetrics{ops: map[string]*histogram{}}
	}
	now := time.Now()
	mt.since.Store(&now)
	return mt
}

func (mt *metrics) count(e Event) {
	mt.all.add(e.Kind)
	if dm := mt.drivers[e.Driver]; dm != nil {
		dm.counters.add(e.Kind)
	}
}

func (mt *metrics) latency(driverName, op string, d time.Duration) {
	dm := mt.drivers[driverName]
	if dm == nil {
		return
	}
	dm.mu.Lock()
	h := dm.ops[op]
	if h == nil {
		h = new(histogram)
		dm.ops[op] = h
	}
	dm.mu.Unlock()
	h.add(d)
}

func (c *counters) snapshot() Counters {
	s := Counters{
		Hits: c.get(EventHit), Misses: c.get(EventMiss), Sets: c.get(EventSet),
		Removes: c.get(EventRemoved), Flushes: c.get(EventFlushed), Errors: c.get(EventError),
		LockAcquired: c.get(EventLockAcquired), LockContended: c.get(EventLockContended),
		LockReleased: c.get(EventLockReleased), LockLost: c.get(EventLockLost),
	}
	if s.Hits+s.Misses > 0 {
		s.HitRate = float64(s.Hits) / float64(s.Hits+s.Misses)
	}
	return s
}

// Metrics returns a snapshot of the counters and latencies. Without Config.Metrics it is
// empty.
func (c *Cache) Metrics() Metrics {
	mt := c.m.metrics
	if mt == nil {
		return Metrics{}
	}
	out := Metrics{Counters: mt.all.snapshot(), Since: *mt.since.Load(), Drivers: map[string]DriverMetrics{}}
	for name, dm := range mt.drivers {
		if name == "" {
			continue
		}
		dm.mu.Lock()
		ops := maps.Clone(dm.ops)
		dm.mu.Unlock()
		d := DriverMetrics{Counters: dm.counters.snapshot(), Ops: map[string]Latency{}}
		for op, h := range ops {
			d.Ops[op] = h.summary()
		}
		out.Drivers[name] = d
	}
	return out
}

// ResetMetrics zeroes the counters and latencies.
func (c *Cache) ResetMetrics() {
	mt := c.m.metrics
	if mt == nil {
		return
	}
	mt.all.reset()
	for _, dm := range mt.drivers {
		dm.counters.reset()
		dm.mu.Lock()
		dm.ops = map[string]*histogram{}
		dm.mu.Unlock()
	}
	now := time.Now()
	mt.since.Store(&now)
}

// histogram is log-linear: 4 buckets per power of two of nanoseconds.
type histogram struct {
	n [64 * 4]atomic.Int64
}

func bucket(d time.Duration) int {
	ns := uint64(max(d, 1))
	e := bits.Len64(ns) - 1 // 2^e <= ns < 2^(e+1)
	sub := 0
	if e >= 2 {
		sub = int(ns>>(e-2)) & 3
	}
	return e*4 + sub
}

// bucketMid is a duration inside bucket i, the middle of its range.
func bucketMid(i int) time.Duration {
	e, sub := i/4, i%4
	if e < 2 {
		return time.Duration(1 << e)
	}
	lo := uint64(1)<<e + uint64(sub)<<(e-2)
	return time.Duration(lo + uint64(1)<<(e-3))
}

func (h *histogram) add(d time.Duration) { h.n[bucket(d)].Add(1) }

func (h *histogram) summary() Latency {
	var counts [len(h.n)]int64
	var total int64
	for i := range h.n {
		counts[i] = h.n[i].Load()
		total += counts[i]
	}
	l := Latency{Samples: total}
	if total == 0 {
		return l
	}
	at := func(q float64) time.Duration {
		rank := int64(q * float64(total))
		var seen int64
		for i, c := range counts {
			seen += c
			if seen > rank {
				return bucketMid(i)
			}
		}
		return bucketMid(len(counts) - 1)
	}
	l.P50, l.P95, l.P99 = at(0.50), at(0.95), at(0.99)
	return l
}
