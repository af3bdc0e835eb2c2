// Package queue is a bounded queue that hands its values to a function on a goroutine of
// its own: a producer never waits for the consumer, only for a short mutex hold.
package queue

import (
	"sync"
	"sync/atomic"
)

// Queue hands the values given to Put to a function, one at a time and in order, on a
// goroutine of its own. It holds at most size values; Put drops (and counts) a value
// that finds it full. A panic in the function is recovered and the delivery goes on.
//
// Put appends under a mutex; the goroutine takes every queued value at once, so it
// locks once per batch, not per value, and Put wakes it only when it sleeps.
type Queue[T any] struct {
	fn   func(T)
	size int

	mu       sync.Mutex
	items    []T
	sleeping bool // the goroutine waits on wake
	stopped  bool
	wake     chan struct{} // buffered (1): at most one wake-up per sleep

	dropped atomic.Int64
	done    chan struct{}
	once    sync.Once
}

// New starts a queue of at most size values (at least 1) that hands them to fn.
func New[T any](size int, fn func(T)) *Queue[T] {
	q := &Queue[T]{fn: fn, size: max(size, 1), wake: make(chan struct{}, 1), done: make(chan struct{})}
	go q.deliver()
	return q
}

// Put queues v, or drops and counts it when the queue is full. After Stop it does
// nothing.
func (q *Queue[T]) Put(v T) {
	q.mu.Lock()
	if q.stopped {
		q.mu.Unlock()
		return
	}
	if len(q.items) >= q.size {
		q.mu.Unlock()
		q.dropped.Add(1)
		return
	}
	q.items = append(q.items, v)
	q.wakeLocked()
}

// wakeLocked unlocks q.mu and wakes the goroutine if it sleeps: the send never blocks,
// one wake-up per sleep into a buffer of one.
func (q *Queue[T]) wakeLocked() {
	wake := q.sleeping
	q.sleeping = false
	q.mu.Unlock()
	if wake {
		q.wake <- struct{}{}
	}
}

// deliver hands the queued values to fn, a batch at a time, until Stop; then it delivers
// what is queued and returns.
func (q *Queue[T]) deliver() {
	defer close(q.done)
	var spare []T
	for {
		q.mu.Lock()
		for len(q.items) == 0 {
			if q.stopped {
				q.mu.Unlock()
				return
			}
			q.sleeping = true
			q.mu.Unlock()
			<-q.wake
			q.mu.Lock()
		}
		batch := q.items
		q.items = spare[:0]
		q.mu.Unlock()
		var zero T
		for i := range batch {
			q.handle(batch[i])
			batch[i] = zero // let what it refers to go
		}
		spare = batch
	}
}

func (q *Queue[T]) handle(v T) {
	defer func() { _ = recover() }() // a panicking fn never breaks the delivery
	q.fn(v)
}

// Stop stops taking values, lets the goroutine deliver what is queued, waits for that,
// and returns how many values were dropped because the queue was full. It may be called
// more than once, and concurrently.
func (q *Queue[T]) Stop() (dropped int64) {
	q.once.Do(func() {
		q.mu.Lock()
		q.stopped = true
		q.wakeLocked()
	})
	<-q.done
	return q.dropped.Load()
}
