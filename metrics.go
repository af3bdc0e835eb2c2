package cache

import (
	"math/bits"
	"sync/atomic"
	"time"
	"unsafe"
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
	// sample[i] is set when the operations of shard i should time their next timed
	// call: every sampleEvery-th event of a shard sets it, the next timed call clears it.
	sample [numShards]struct {
		on atomic.Bool
		_  [cacheLine - 4]byte
	}
	since   time.Time
	drivers map[string]*driverMetrics // fixed at New, "" included: read without a lock
	none    *driverMetrics            // drivers[""]: errors before a driver was chosen
}

// timedOps are the operations whose latency is kept, each with a histogram of its own in
// driverMetrics.timed.
var timedOps = [...]string{"Get", "Set", "Has", "Pull", "Remember", "SWR", "Lock", "Once", "Modify", "Increment", "Decrement"}

type driverMetrics struct {
	counters
	timed [len(timedOps)]atomic.Pointer[histogram] // nil: no sample yet
}

// counters are sharded: concurrent operations on several cores mostly add to different
// cache lines, instead of all contending for one. There is one set per driver; the
// totals are summed at snapshot time, so an event costs one atomic add.
type counters struct {
	_      [cacheLine]byte // off the cache line of whatever is allocated before
	shards [numShards]struct {
		n [lastKind + 1]atomic.Int64
		_ [(cacheLine - (int(lastKind)+1)*8%cacheLine) % cacheLine]byte // whole cache lines per shard
	}
}

const (
	cacheLine = 64
	numShards = 16
)

// add counts one event of kind k, and returns the shard and the shard's count of k.
func (c *counters) add(k EventKind) (uintptr, int64) {
	i := shard()
	return i, c.shards[i].n[k].Add(1)
}

// shard picks a shard for the calling goroutine, from the address of its stack: a
// goroutine keeps adding to the same cache line, which stays in its core's cache, where a
// random shard per call would move lines between cores on most adds (and rand costs more
// than the add). Goroutines whose stacks are near each other get different shards. The
// address is only hashed, never used as a pointer.
func shard() uintptr {
	var x byte
	return (uintptr(unsafe.Pointer(&x)) >> 13 * 0x9E3779B1 >> 7) % numShards
}

func (c *counters) get(k EventKind) (sum int64) {
	for i := range c.shards {
		sum += c.shards[i].n[k].Load()
	}
	return sum
}

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
	if i, n := dm.add(k); n%sampleEvery == 0 {
		mt.sample[i].on.Store(true)
	}
	if start != 0 {
		dm.latency(op, start.since())
	}
}

// sampling reports whether the calling goroutine should time this call: once after
// every sampleEvery-th event of its counter shard.
func (mt *metrics) sampling() bool {
	s := &mt.sample[shard()].on
	return s.Load() && s.Swap(false)
}

// latency records one sample of op; ops other than timedOps are not kept.
func (dm *driverMetrics) latency(op string, d time.Duration) {
	for i, name := range timedOps {
		if name != op {
			continue
		}
		h := dm.timed[i].Load()
		if h == nil {
			dm.timed[i].CompareAndSwap(nil, new(histogram))
			h = dm.timed[i].Load()
		}
		h.add(d)
		return
	}
}

// snapshot returns the counts, without Ops, Drivers and Since.
func (c *counters) snapshot() Metrics {
	s := Metrics{
		Hits: c.get(EventHit), Misses: c.get(EventMiss), Sets: c.get(EventSet),
		Removes: c.get(EventRemoved), Flushes: c.get(EventFlushed), Errors: c.get(EventError),
		LockAcquired: c.get(EventLockAcquired), LockContended: c.get(EventLockContended),
		LockReleased: c.get(EventLockReleased), LockLost: c.get(EventLockLost),
		Expired: c.get(EventExpired),
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
		d := dm.counters.snapshot()
		out.plus(d) // the totals: every driver, and the errors before one was chosen
		if name == "" {
			continue
		}
		d.Since, d.Ops = mt.since, map[string]Latency{}
		for i, op := range timedOps {
			if h := dm.timed[i].Load(); h != nil {
				if l := h.summary(); l.Samples > 0 {
					d.Ops[op] = l
				}
			}
		}
		out.Drivers[name] = d
	}
	out.rate()
	return out
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
