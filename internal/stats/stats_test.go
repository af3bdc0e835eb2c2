package stats

import (
	"math"
	"sync"
	"testing"
	"time"
	"unsafe"
)

func TestLayout(t *testing.T) {
	var c Counters
	if sz := unsafe.Sizeof(c.shards[0]); sz%CacheLine != 0 {
		t.Fatalf("a shard is %d bytes, not whole cache lines", sz)
	}
	var f Flags
	if sz := unsafe.Sizeof(f.f[0]); sz != CacheLine {
		t.Fatalf("a flag takes %d bytes, want %d", sz, CacheLine)
	}
}

func TestCounters(t *testing.T) {
	var c Counters
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for range 1000 {
				if s, n := c.Add(g % 3); s >= Shards || n < 1 {
					t.Errorf("Add returned shard %d, count %d", s, n)
				}
			}
		})
	}
	wg.Wait()
	for i, want := range []int64{3000, 3000, 2000, 0} {
		if got := c.Get(i); got != want {
			t.Errorf("Get(%d) = %d, want %d", i, got, want)
		}
	}
}

func TestFlags(t *testing.T) {
	var f Flags
	if f.Take() {
		t.Fatal("Take on a clear flag")
	}
	f.Set(Shard())
	if !f.Take() {
		t.Fatal("Take missed the flag set on this goroutine's shard")
	}
	if f.Take() {
		t.Fatal("Take did not clear the flag")
	}
}

func TestBucketMidIsInsideItsBucket(t *testing.T) {
	for i := range 63 * 4 {
		if b := bucket(bucketMid(i)); b != i && i >= 2*4 {
			t.Fatalf("bucketMid(%d) = %v falls in bucket %d", i, bucketMid(i), b)
		}
	}
}

func TestHistogramWithin19Percent(t *testing.T) {
	for _, d := range []time.Duration{1, 7, 100, 999, 12345, time.Millisecond, 3 * time.Second, time.Hour} {
		var h Histogram
		h.Add(d)
		s := h.Summary()
		if s.Samples != 1 {
			t.Fatalf("Samples = %d", s.Samples)
		}
		for _, p := range []time.Duration{s.P50, s.P95, s.P99} {
			if math.Abs(float64(p-d))/float64(d) > 0.19 && d > 4 {
				t.Errorf("%v summarized as %v", d, p)
			}
		}
	}
}

func TestHistogramPercentiles(t *testing.T) {
	var h Histogram
	if s := h.Summary(); s != (Summary{}) {
		t.Fatalf("empty: %+v", s)
	}
	for i := 1; i <= 100; i++ {
		h.Add(time.Duration(i) * time.Microsecond)
	}
	s := h.Summary()
	near := func(got, want time.Duration) bool { return math.Abs(float64(got-want))/float64(want) <= 0.19 }
	if s.Samples != 100 || !near(s.P50, 51*time.Microsecond) || !near(s.P95, 96*time.Microsecond) || !near(s.P99, 100*time.Microsecond) {
		t.Fatalf("%+v", s)
	}
	h.Add(-5) // counts as 1 ns
	if s := h.Summary(); s.Samples != 101 {
		t.Fatalf("%+v", s)
	}
}
