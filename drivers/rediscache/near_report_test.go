package rediscache

import (
	"sync"
	"testing"
)

// TestNearReportOrder: the changes of confirmed, stored from many goroutines at once,
// reach OnNear's functions one at a time and in order: the first confirmation is not
// reported, then drops and restores alternate, dropped first, as many as were queued;
// stop's drop is not reported.
func TestNearReportOrder(t *testing.T) {
	n := &near{}
	var mu sync.Mutex
	var got []bool
	inside := 0
	fn := func(serving bool) {
		mu.Lock()
		inside++
		if inside > 1 {
			t.Error("OnNear's function called concurrently")
		}
		got = append(got, serving)
		mu.Unlock()
		mu.Lock()
		inside--
		mu.Unlock()
	}
	n.onNear = append(n.onNear, fn)
	store := func(c int64) {
		n.mu.Lock()
		changed := n.setConfirmed(c)
		n.mu.Unlock()
		if changed {
			n.report()
		}
	}
	store(1) // the first confirmation
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 500 {
				store(int64((g + i) % 2)) // 0: a drop, 1: confirmed
			}
		})
	}
	wg.Wait()
	n.mu.Lock()
	n.stopped = true
	n.setConfirmed(0)
	n.mu.Unlock()
	n.report()
	mu.Lock()
	defer mu.Unlock()
	if uint64(len(got)) != n.queued {
		t.Fatalf("%d changes reported, %d queued", len(got), n.queued)
	}
	if len(got) == 0 {
		t.Fatal("no change reported")
	}
	for i, serving := range got {
		if serving != (i%2 == 1) {
			t.Fatalf("change %d reported serving=%v; the changes alternate, dropped first: %v", i, serving, got[:i+1])
		}
	}
}
