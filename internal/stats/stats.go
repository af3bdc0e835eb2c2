// Package stats holds the counters of a hot path: event counters sharded over cache
// lines, one flag per shard, and a log-linear latency histogram. Every operation is a
// few atomic instructions, without locks or allocations, and the small ones inline.
package stats

import (
	"math/bits"
	"sync/atomic"
	"time"
	"unsafe"
)

const (
	// CacheLine is the size of a cache line, the unit that cores contend for.
	CacheLine = 64
	// Shards is the number of shards of [Counters] and [Flags].
	Shards = 16
	// Slots is the number of counters of a [Counters]: 24 int64s, three whole cache
	// lines per shard.
	Slots = 24
)

// Counters are Slots counters, sharded: concurrent adds on several cores mostly go to
// different cache lines, instead of all contending for one. An add is one atomic add; a
// read sums the shards. The zero value is ready.
type Counters struct {
	_      [CacheLine]byte // off the cache line of whatever is allocated before
	shards [Shards]struct{ n [Slots]atomic.Int64 }
}

// Add adds one to counter i, and returns the shard it added on and that shard's count of
// i.
func (c *Counters) Add(i int) (shard uintptr, n int64) {
	s := Shard()
	return s, c.shards[s].n[i].Add(1)
}

// Get returns counter i, summed over the shards.
func (c *Counters) Get(i int) (sum int64) {
	for s := range c.shards {
		sum += c.shards[s].n[i].Load()
	}
	return sum
}

// Shard picks a shard for the calling goroutine, from the address of its stack: a
// goroutine keeps adding to the same cache line, which stays in its core's cache, where a
// random shard per call would move lines between cores on most adds (and rand costs more
// than the add). Goroutines whose stacks are near each other get different shards. The
// address is only hashed, never used as a pointer.
func Shard() uintptr {
	var x byte
	return (uintptr(unsafe.Pointer(&x)) >> 13 * 0x9E3779B1 >> 7) % Shards
}

// Flags are one flag per shard, each on a cache line of its own: a goroutine sets the
// flag of a shard, and a later caller on that shard ([Shard]) takes it. The zero value
// is ready, every flag clear.
type Flags struct {
	f [Shards]struct {
		on atomic.Bool
		_  [CacheLine - 4]byte
	}
}

// Set sets the flag of shard.
func (f *Flags) Set(shard uintptr) { f.f[shard].on.Store(true) }

// Take clears the flag of the calling goroutine's shard and reports whether it was set.
// A clear flag costs one load of a line that stays in the core's cache.
func (f *Flags) Take() bool {
	s := &f.f[Shard()].on
	return s.Load() && s.Swap(false)
}

// Histogram counts durations in log-linear buckets, 4 per power of two of nanoseconds, so
// that a percentile read from it is within 19% of the true value. The zero value is
// ready; an add is one atomic add.
type Histogram struct {
	n [64 * 4]atomic.Int64
}

// Add counts d (a duration < 1 ns counts as 1 ns).
func (h *Histogram) Add(d time.Duration) { h.n[bucket(d)].Add(1) }

// Summary is what a Histogram holds: how many durations, and three percentiles.
type Summary struct {
	Samples       int64
	P50, P95, P99 time.Duration
}

// Summary returns the count and percentiles of the durations added so far; the
// percentiles are 0 without samples.
func (h *Histogram) Summary() Summary {
	var counts [len(h.n)]int64
	var total int64
	for i := range h.n {
		counts[i] = h.n[i].Load()
		total += counts[i]
	}
	s := Summary{Samples: total}
	if total == 0 {
		return s
	}
	at := func(q float64) time.Duration {
		rank := int64(q * float64(total))
		var seen int64
		for i, c := range counts {
			if seen += c; seen > rank {
				return bucketMid(i)
			}
		}
		return bucketMid(len(counts) - 1)
	}
	s.P50, s.P95, s.P99 = at(0.50), at(0.95), at(0.99)
	return s
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
	if e == 2 { // 1 ns wide
		return time.Duration(lo)
	}
	return time.Duration(lo + uint64(1)<<(e-3))
}
