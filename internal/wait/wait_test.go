package wait

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestLoopUntilDone(t *testing.T) {
	n := 0
	err := Loop(context.Background(), nil, time.Millisecond, 2*time.Millisecond, 0, false, func() (bool, error) {
		n++
		return n == 3, nil
	})
	if err != nil || n != 3 {
		t.Fatalf("err %v after %d attempts", err, n)
	}
}

func TestLoopAttemptError(t *testing.T) {
	boom := errors.New("boom")
	if err := Loop(context.Background(), nil, time.Millisecond, time.Millisecond, 0, false, func() (bool, error) { return false, boom }); err != boom {
		t.Fatalf("err %v", err)
	}
}

func TestLoopWaitElapses(t *testing.T) {
	start := time.Now()
	err := Loop(context.Background(), nil, time.Millisecond, 5*time.Millisecond, 30*time.Millisecond, false, func() (bool, error) { return false, nil })
	if err != ErrOver {
		t.Fatalf("err %v", err)
	}
	if d := time.Since(start); d < 30*time.Millisecond || d > time.Second {
		t.Fatalf("returned after %v", d)
	}
}

func TestLoopContextCause(t *testing.T) {
	cause := errors.New("gone")
	ctx, cancel := context.WithCancelCause(context.Background())
	time.AfterFunc(20*time.Millisecond, func() { cancel(cause) })
	err := Loop(ctx, nil, time.Millisecond, 5*time.Millisecond, 0, false, func() (bool, error) { return false, nil })
	if err != cause {
		t.Fatalf("err %v", err)
	}
}

// A watch wakes the waiter long before its backoff would. It is set up before every
// attempt, with watchFirst; without it, from the second attempt on.
func TestLoopWatchWakes(t *testing.T) {
	watches, n := 0, 0
	watch := func(ctx context.Context) (<-chan struct{}, error) {
		watches++
		ch := make(chan struct{})
		close(ch) // a change at once
		return ch, nil
	}
	start := time.Now()
	err := Loop(context.Background(), watch, time.Hour, time.Hour, 0, true, func() (bool, error) {
		n++
		return n == 3, nil
	})
	if err != nil || n != 3 || watches != 3 {
		t.Fatalf("err %v, %d attempts, %d watches", err, n, watches)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("the watch did not wake it: %v", d)
	}
	// Without watchFirst the first attempt is not watched; a watch that fails: the
	// loop polls.
	n, watches = 0, 0
	err = Loop(context.Background(), func(context.Context) (<-chan struct{}, error) { watches++; return nil, errors.New("no watch") },
		time.Millisecond, time.Millisecond, 0, false, func() (bool, error) { n++; return n == 3, nil })
	if err != nil || watches != 2 {
		t.Fatalf("err %v, %d watches", err, watches)
	}
}

func TestBounded(t *testing.T) {
	v, err := Bounded(context.Background(), func(context.Context) (int, error) { return 7, nil })
	if v != 7 || err != nil {
		t.Fatalf("%v %v", v, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	release := make(chan struct{})
	defer close(release)
	start := time.Now()
	_, err = Bounded(ctx, func(context.Context) (int, error) { <-release; return 1, nil }) // ignores its ctx
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 5*time.Second {
		t.Fatalf("err %v after %v", err, time.Since(start))
	}
}
