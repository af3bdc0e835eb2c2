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
	// Expired counts the entries the drivers dropped because their TTL passed, as
	// reported by the drivers that implement driver.ExpiryNotifier.
	Expired int64
	// BreakerOpened and BreakerClosed count the changes of the circuit breakers of the
	// drivers that report one (an OnBreaker method, see package driver): one each per
	// outage.
	BreakerOpened, BreakerClosed int64
	// FailedOpen counts the reads that failed and were taken as a miss (Config.FailOpen,
	// WithFailOpen): Get, GetAs, Remember and SWR calls answered without the store, one
	// per call.
	FailedOpen int64
	// BreakerOpen is, in a driver's Metrics, whether its circuit breaker is open now
	// (its store does not answer); in the totals, whether any driver's is.
	BreakerOpen bool
	// NearHits counts the hits that a driver's near tier answered (driver.Near: the
	// Redis driver with its near cache on), without asking the store; they are part of
	// Hits, so the store answered Hits - NearHits.
	NearHits int64
	// ErrorsByOp splits Errors by operation: the Op of the error events ("Get", "Set",
	// "Remember", "Lock", ...). An operation without errors has no entry. Empty without
	// errors, nil when metrics are off.
	ErrorsByOp map[string]int64
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

// driverMetrics are a driver's counters, one per EventKind, summed at snapshot time so
// that an event costs one atomic add, and its histograms.
type driverMetrics struct {
	stats.Counters
	timed       [timedOps]atomic.Pointer[stats.Histogram] // nil: no sample yet
	breakerOpen atomic.Bool                               // the driver's circuit breaker
	// more are the counters that are not events: slotNearHit.
	more stats.Counters
	// errs are the error events per operation, indexed by it: errors are rare, so one
	// atomic add on an unsharded counter is enough.
	errs [len(opNames)]atomic.Int64
}

// The counters of driverMetrics.more.
const (
	slotNearHit = iota // a hit answered by the driver's near tier
)

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
func (mt *metrics) count(d *namedDriver, op operation, k EventKind, start stamp) {
	dm := mt.none
	if d != nil && d.metrics != nil {
		dm = d.metrics
	}
	if i, n := dm.Add(int(k)); n%sampleEvery == 0 {
		mt.sample.Set(i)
	}
	if k == EventError {
		if int(op) < len(dm.errs) {
			dm.errs[op].Add(1)
		}
	}
	if start != 0 {
		dm.latency(op, start.since())
	}
}

// nearHit counts a hit that d's near tier answered, in NearHits: one atomic add on a
// sharded counter (nothing without Config.Metrics).
func (d *namedDriver) nearHit() {
	if dm := d.metrics; dm != nil {
		dm.more.Add(slotNearHit)
	}
}

// sampling reports whether the calling goroutine should time this call: once after
// every sampleEvery-th event of its counter shard.
func (mt *metrics) sampling() bool { return mt.sample.Take() }

// latency records one sample of op; the operations that are not timed are not kept.
func (dm *driverMetrics) latency(op operation, d time.Duration) {
	i, ok := op.timed()
	if !ok {
		return
	}
	h := dm.timed[i].Load()
	if h == nil {
		dm.timed[i].CompareAndSwap(nil, new(stats.Histogram))
		h = dm.timed[i].Load()
	}
	h.Add(d)
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
		BreakerOpen: dm.breakerOpen.Load(), NearHits: dm.more.Get(slotNearHit),
		ErrorsByOp: map[string]int64{},
	}
	for i := range dm.errs {
		if n := dm.errs[i].Load(); n > 0 {
			s.ErrorsByOp[operation(i).String()] = n
		}
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
	s.NearHits += o.NearHits
	if s.ErrorsByOp == nil {
		s.ErrorsByOp = map[string]int64{}
	}
	for op, n := range o.ErrorsByOp {
		s.ErrorsByOp[op] += n
	}
}

// Metrics returns a snapshot of the counters and latencies. Without Config.Metrics it is
// empty.
func (c *Cache) Metrics() Metrics {
	mt := c.m.metrics
	if mt == nil {
		return Metrics{}
	}
	out := Metrics{Since: mt.since, Drivers: map[string]Metrics{}, ErrorsByOp: map[string]int64{}}
	for name, dm := range mt.drivers {
		d := dm.snapshot()
		out.plus(d) // the totals: every driver, and the errors before one was chosen
		if name == "" {
			continue
		}
		d.Since, d.Ops = mt.since, map[string]Latency{}
		for i := range dm.timed {
			if h := dm.timed[i].Load(); h != nil {
				if l := h.Summary(); l.Samples > 0 {
					d.Ops[operation(i+1).String()] = Latency(l)
				}
			}
		}
		out.Drivers[name] = d
	}
	out.rate()
	return out
}
