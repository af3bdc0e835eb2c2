package bench

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/dgraph-io/ristretto/v2"
	"github.com/maypok86/otter/v2"
)

// The tests in this file measure, rather than check, how ristretto v2 handles writes
// (which is why the memory driver is built on otter instead). They log their
// numbers (go test -v -run Writes) and pass whatever ristretto does; only otter's
// side, which the memory driver relies on, is asserted. docs/benchmarks.md quotes them.

const (
	writes         = 10_000  // distinct keys written by each serial measurement
	parallelWrites = 200_000 // distinct keys written by the parallel measurement
	bound          = 1_000   // the size bound of the bounded caches, in entries
)

func writeKey(i int) string { return fmt.Sprintf("key.%05d", i) }

func newRistrettoBounded(t *testing.T, maxCost int64) *ristretto.Cache[string, string] {
	t.Helper()
	r, err := ristretto.NewCache(&ristretto.Config[string, string]{
		NumCounters:        10 * maxCost,
		MaxCost:            maxCost,
		BufferItems:        64,
		IgnoreInternalCost: true,
		Metrics:            true,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	return r
}

// writeStats is what one measurement counts over n writes. A count of -1 was not
// measured.
type writeStats struct {
	n         int
	refused   int // Set returned false
	missNow   int // a Get right after the Set, with no Wait, missed
	missAfter int // a Get after Wait (ristretto) or after all the writes (otter) missed
}

func newStats(n int) writeStats { return writeStats{n: n, refused: -1, missNow: -1, missAfter: -1} }

func (s writeStats) String() string {
	pct := func(n int) string {
		if n < 0 {
			return "not measured"
		}
		return fmt.Sprintf("%d of %d (%.1f%%)", n, s.n, 100*float64(n)/float64(s.n))
	}
	return fmt.Sprintf("Set returned false: %s; Get right after Set missed: %s; Get later missed: %s",
		pct(s.refused), pct(s.missNow), pct(s.missAfter))
}

// lost reports whether any measured count is above zero.
func (s writeStats) lost() bool { return s.refused > 0 || s.missNow > 0 || s.missAfter > 0 }

// TestWritesSetThenGet writes distinct keys into a cache with room for all of them and
// reads each key back at once, with no Wait: what a Create, or a lock, would need.
func TestWritesSetThenGet(t *testing.T) {
	r := newRistrettoBounded(t, 10*writes)
	rs := writeStats{n: writes}
	for i := range writes {
		k := writeKey(i)
		if !r.Set(k, "v", 1) {
			rs.refused++
		}
		if _, ok := r.Get(k); !ok {
			rs.missNow++
		}
	}
	r.Wait()
	for i := range writes {
		if _, ok := r.Get(writeKey(i)); !ok {
			rs.missAfter++
		}
	}
	t.Logf("ristretto, room for all %d keys: %v; metrics: %d sets dropped, %d rejected",
		writes, rs, r.Metrics.SetsDropped(), r.Metrics.SetsRejected())

	o := otter.Must(&otter.Options[string, string]{})
	defer o.StopAllGoroutines()
	ot := writeStats{n: writes, refused: -1}
	for i := range writes {
		k := writeKey(i)
		o.Set(k, "v")
		if _, ok := o.GetIfPresent(k); !ok {
			ot.missNow++
		}
	}
	for i := range writes {
		if _, ok := o.GetIfPresent(writeKey(i)); !ok {
			ot.missAfter++
		}
	}
	t.Logf("otter, unbounded: %v", ot)
	if ot.lost() {
		t.Errorf("otter lost writes: %v; want none", ot)
	}
}

// TestWritesParallel writes distinct keys from GOMAXPROCS goroutines at once into a
// cache with room for all of them, then waits and counts the keys that never landed.
func TestWritesParallel(t *testing.T) {
	procs := max(runtime.GOMAXPROCS(0), 2)
	each := parallelWrites / procs
	run := func(set func(k string) bool) (refused int) {
		var n atomic.Int64
		var wg sync.WaitGroup
		for g := range procs {
			wg.Go(func() {
				for i := range each {
					if !set(writeKey(g*each + i)) {
						n.Add(1)
					}
				}
			})
		}
		wg.Wait()
		return int(n.Load())
	}

	r := newRistrettoBounded(t, 2*parallelWrites)
	rs := newStats(procs * each)
	rs.refused = run(func(k string) bool { return r.Set(k, "v", 1) })
	rs.missAfter = 0
	r.Wait()
	for i := range procs * each {
		if _, ok := r.Get(writeKey(i)); !ok {
			rs.missAfter++
		}
	}
	t.Logf("ristretto, %d goroutines, room for all %d keys: %v; metrics: %d sets dropped",
		procs, procs*each, rs, r.Metrics.SetsDropped())

	o := otter.Must(&otter.Options[string, string]{})
	defer o.StopAllGoroutines()
	ot := newStats(procs * each)
	run(func(k string) bool { o.Set(k, "v"); return true })
	ot.missAfter = 0
	for i := range procs * each {
		if _, ok := o.GetIfPresent(writeKey(i)); !ok {
			ot.missAfter++
		}
	}
	t.Logf("otter, %d goroutines, unbounded: %v", procs, ot)
	if ot.lost() {
		t.Errorf("otter lost writes: %v; want none", ot)
	}
}

// TestWritesAdmission writes distinct keys, each once, into a cache bounded to a tenth
// of them. After each Set it waits (ristretto) and reads the key back: a miss is a
// write that the cache refused outright, rather than an older entry evicted to make room.
func TestWritesAdmission(t *testing.T) {
	r := newRistrettoBounded(t, bound)
	rs := newStats(writes)
	rs.refused, rs.missAfter = 0, 0
	for i := range writes {
		k := writeKey(i)
		if !r.Set(k, "v", 1) {
			rs.refused++
		}
		r.Wait()
		if _, ok := r.Get(k); !ok {
			rs.missAfter++
		}
	}
	t.Logf("ristretto, bound %d: %v; metrics: %d keys added, %d sets rejected by admission",
		bound, rs, r.Metrics.KeysAdded(), r.Metrics.SetsRejected())

	o := otter.Must(&otter.Options[string, string]{MaximumSize: bound})
	defer o.StopAllGoroutines()
	ot := newStats(writes)
	ot.missNow = 0
	for i := range writes {
		k := writeKey(i)
		o.Set(k, "v")
		if _, ok := o.GetIfPresent(k); !ok {
			ot.missNow++
		}
	}
	o.CleanUp()
	// Under a bound otter evicts, after the write, the entries least likely to be used
	// again; it never refuses or delays the write itself. That is logged, not asserted:
	// the policy decides which keys stay.
	t.Logf("otter, bound %d: %v; %d entries after clean-up", bound, ot, o.EstimatedSize())
}
