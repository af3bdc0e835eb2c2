package queue

import (
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestDeliversInOrderAndDrainsOnStop(t *testing.T) {
	defer goleak.VerifyNone(t)
	var got []int
	q := New(1000, func(v int) { got = append(got, v) })
	for i := range 500 {
		q.Put(i)
	}
	if d := q.Stop(); d != 0 {
		t.Fatalf("dropped %d", d)
	}
	if len(got) != 500 {
		t.Fatalf("delivered %d of 500", len(got))
	}
	for i, v := range got {
		if v != i {
			t.Fatalf("got[%d] = %d", i, v)
		}
	}
	q.Put(1) // after Stop: nothing
	if d := q.Stop(); d != 0 || len(got) != 500 {
		t.Fatalf("second Stop: dropped %d, delivered %d", d, len(got))
	}
}

func TestDropsWhenFull(t *testing.T) {
	defer goleak.VerifyNone(t)
	release := make(chan struct{})
	started := make(chan struct{})
	var n int
	q := New(2, func(v int) {
		if v == 0 {
			close(started)
			<-release
		}
		n++
	})
	q.Put(0)
	<-started // the goroutine holds 0; the queue is empty
	for i := 1; i <= 5; i++ {
		q.Put(i)
	}
	close(release)
	if d := q.Stop(); d != 3 {
		t.Fatalf("dropped %d, want 3", d)
	}
	if n != 3 {
		t.Fatalf("delivered %d, want 3", n)
	}
}

func TestPanicDoesNotStopDelivery(t *testing.T) {
	defer goleak.VerifyNone(t)
	var got []int
	q := New(10, func(v int) {
		if v == 1 {
			panic("boom")
		}
		got = append(got, v)
	})
	q.Put(1)
	q.Put(2)
	q.Stop()
	if len(got) != 1 || got[0] != 2 {
		t.Fatalf("got %v", got)
	}
}

func TestConcurrentPutAndStop(t *testing.T) {
	defer goleak.VerifyNone(t)
	var mu sync.Mutex
	n := 0
	q := New(1<<20, func(int) { mu.Lock(); n++; mu.Unlock() })
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for i := range 1000 {
				q.Put(i)
				if i%100 == 0 {
					time.Sleep(time.Microsecond)
				}
			}
		})
	}
	wg.Wait()
	var sg sync.WaitGroup
	for range 3 {
		sg.Go(func() { q.Stop() })
	}
	sg.Wait()
	if n != 4000 {
		t.Fatalf("delivered %d of 4000", n)
	}
}
