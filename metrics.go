package cache

import (
	"sync/atomic"
	"time"

	"github.com/cachekit/cache/internal/stats"
)

// Metrics is a snapshot of the cache's counters, from [Cache.Metrics]: the events
// counted since the cache was made with Config.Metrics, over every driver, and per
// driver in Drivers. The counters only grow.
type Metrics struct {
	Hits, Misses, Sets, Removes, Flushes, Errors        int64
	LockAcquired, LockContended, LockReleased, LockLost int64
	// Expired counts the entries the drivers dropped because their TTL passed (memory,
	// lru and file report it; Redis does not).
	Expired int64
	// BreakerOpened and BreakerClosed count the changes of the drivers' circuit breakers
	// (Redis has one): one each per outage.
	BreakerOpened, BreakerClosed int64
	// FailedOpen counts the reads that failed and were taken as a miss (Config.FailOpen,
	// WithFailOpen): the calls answered without the store.
	FailedOpen int64
	// BreakerOpen is, in a driver's Metrics, whether its circuit breaker is open now
	// (its store does not answer); in the totals, whether any driver's is.
	BreakerOpen bool
	// HitRate is Hits / (Hits + Misses), or 0 without reads.
	HitRate float64
	// Ops holds, in a driver's Metrics, the latency of each timed operation (Get, Set,
	// Has, Pull, Remember, SWR, Lock, Once, Modify, Increment, Decrement), sampled on
	// about one call in 64. Nil in the totals.
	Ops map[string]Latency
	// Drivers holds, in the totals, the same per driver. Nil in a driver's Metrics.
	Drivers map[string]Metrics
	// Since is when counting started.
	Since time.Time
}

// Latency summarizes sampled durations. The percentiles come from a log-linear
// histogram: each is within 19% of the true value.
type Latency struct {
	Samples       int64
	P50, P95, P99 time.Duration
}

// metrics are Config.Metrics: every event counted on the driver's own counters, and the
// sampled durations.
type metrics struct {
	// sample is set, per counter shard, when every sampleEvery-th event of the shard
	// asks the next timed call there to time itself.
	sample  stats.Flags
	since   time.Time
	drivers map[string]*driverMetrics // fixed at New, "" included: read without a lock
	none    *driverMetrics            // drivers[""]: errors before a driver was chosen
}

// timedOps are the operations whose latency is kept, each with a histogram of its own in
// driverMetrics.timed.
var timedOps = [...]string{"Get", "Set", "Has", "Pull", "Remember", "SWR", "Lock", "Once", "Modify", "Increment", "Decrement"}

// driverMetrics are a driver's counters, one per EventKind, summed at snapshot time so
// that an event costs one atomic add, and its histograms.
type driverMetrics struct {
	stats.Counters
	timed       [len(timedOps)]atomic.Pointer[stats.Histogram] // nil: no sample yet
	breakerOpen atomic.Bool                                    // the driver's circuit breaker
}

var _ [stats.Slots - lastKind - 1]struct{} // every EventKind has a counter

func newMetrics(names []string) *metrics {
	mt := &metrics{drivers: make(map[string]*driverMetrics, len(names)+1), since: time.Now()}
	for _, n := range append(names, "") { // "": errors before a driver was chosen
		mt.drivers[n] = new(driverMetrics)
	}
	mt.none = mt.drivers[""]
	return mt
}

// count counts one operation of d (nil: it failed before a driver was chosen): one
// atomic add on the driver's counters, and the duration of a sampled operation.
func (mt *metrics) count(d *namedDriver, op string, k EventKind, start stamp) {
	dm := mt.none
	if d != nil && d.metrics != nil {
		dm = d.metrics
	}
	if i, n := dm.Add(int(k)); n%sampleEvery == 0 {
		mt.sample.Set(i)
	}
	if start != 0 {
		dm.latency(op, start.since())
	}
}

// sampling reports whether the calling goroutine should time this call: once after
// every sampleEvery-th event of its counter shard.
func (mt *metrics) sampling() bool { return mt.sample.Take() }

// latency records one sample of op; ops other than timedOps are not kept.
func (dm *driverMetrics) latency(op string, d time.Duration) {
	for i, name := range timedOps {
		if name != op {
			continue
		}
		h := dm.timed[i].Load()
		if h == nil {
			dm.timed[i].CompareAndSwap(nil, new(stats.Histogram))
			h = dm.timed[i].Load()
		}
		h.Add(d)
		return
	}
}

// snapshot returns the counts, without Ops, Drivers and Since.
func (dm *driverMetrics) snapshot() Metrics {
	c := func(k EventKind) int64 { return dm.Get(int(k)) }
	s := Metrics{
		Hits: c(EventHit), Misses: c(EventMiss), Sets: c(EventSet),
		Removes: c(EventRemoved), Flushes: c(EventFlushed), Errors: c(EventError),
		LockAcquired: c(EventLockAcquired), LockContended: c(EventLockContended),
		LockReleased: c(EventLockReleased), LockLost: c(EventLockLost),
		Expired: c(EventExpired), BreakerOpened: c(EventBreakerOpened),
		BreakerClosed: c(EventBreakerClosed), FailedOpen: c(EventFailedOpen),
		BreakerOpen: dm.breakerOpen.Load(),
	}
	s.rate()
	return s
}

func (s *Metrics) rate() {
	s.HitRate = 0
	if s.Hits+s.Misses > 0 {
		s.HitRate = float64(s.Hits) / float64(s.Hits+s.Misses)
	}
}

func (s *Metrics) plus(o Metrics) {
	s.Hits += o.Hits
	s.Misses += o.Misses
	s.Sets += o.Sets
	s.Removes += o.Removes
	s.Flushes += o.Flushes
	s.Errors += o.Errors
	s.LockAcquired += o.LockAcquired
	s.LockContended += o.LockContended
	s.LockReleased += o.LockReleased
	s.LockLost += o.LockLost
	s.Expired += o.Expired
	s.BreakerOpened += o.BreakerOpened
	s.BreakerClosed += o.BreakerClosed
	s.FailedOpen += o.FailedOpen
	s.BreakerOpen = s.BreakerOpen || o.BreakerOpen
}

// Metrics returns a snapshot of the counters and latencies. Without Config.Metrics it is
// empty.
func (c *Cache) Metrics() Metrics {
	mt := c.m.metrics
	if mt == nil {
		return Metrics{}
	}
	out := Metrics{Since: mt.since, Drivers: map[string]Metrics{}}
	for name, dm := range mt.drivers {
		d := dm.snapshot()
		out.plus(d) // the totals: every driver, and the errors before one was chosen
		if name == "" {
			continue
		}
		d.Since, d.Ops = mt.since, map[string]Latency{}
		for i, op := range timedOps {
			if h := dm.timed[i].Load(); h != nil {
				if l := h.Summary(); l.Samples > 0 {
					d.Ops[op] = Latency(l)
				}
			}
		}
		out.Drivers[name] = d
	}
	out.rate()
	return out
}
