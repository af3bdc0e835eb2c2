package wait

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// The tests run in synctest bubbles: time there moves only when every goroutine of the
// bubble is blocked, so a duration measured in one is exact, whatever the machine does.

// record returns a probe that logs why each attempt ran, and the log.
func record() (*Probe, func() []Why) {
	var mu sync.Mutex
	var log []Why
	p := &Probe{Tried: func(why Why, _ bool, _ error) {
		mu.Lock()
		log = append(log, why)
		mu.Unlock()
	}}
	return p, func() []Why {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(log)
	}
}

func TestLoopUntilDone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p, log := record()
		n := 0
		err := Loop(WithProbe(context.Background(), p), nil, time.Millisecond, 2*time.Millisecond, 0, false, func() (bool, error) {
			n++
			return n == 3, nil
		})
		if err != nil || n != 3 {
			t.Fatalf("err %v after %d attempts", err, n)
		}
		if got, want := log(), []Why{First, Polled, Polled}; !slices.Equal(got, want) {
			t.Fatalf("attempts ran for %v; want %v", got, want)
		}
		if why, ok := p.Done(); !ok || why != Polled {
			t.Fatalf("Done() = %v, %v; want polled, true", why, ok)
		}
	})
}

func TestLoopAttemptError(t *testing.T) {
	boom := errors.New("boom")
	p := &Probe{}
	if err := Loop(WithProbe(context.Background(), p), nil, time.Millisecond, time.Millisecond, 0, false, func() (bool, error) { return false, boom }); err != boom {
		t.Fatalf("err %v", err)
	}
	if _, ok := p.Done(); ok || p.Attempts(First) != 1 {
		t.Fatalf("a failed attempt: Done() ok %v, %d first attempts; want false, 1", ok, p.Attempts(First))
	}
}

// The wait ends exactly when it has elapsed: not before, and not a backoff later.
func TestLoopWaitElapses(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		attempts := 0
		err := Loop(context.Background(), nil, time.Millisecond, 5*time.Millisecond, 30*time.Millisecond, false, func() (bool, error) {
			attempts++
			return false, nil
		})
		if err != ErrOver {
			t.Fatalf("err %v", err)
		}
		if d := time.Since(start); d != 30*time.Millisecond {
			t.Fatalf("returned after %v; want exactly the wait, 30ms", d)
		}
		// Backoffs of at most 5 ms: at least 6 turns in 30 ms, more with the jitter.
		if attempts < 7 {
			t.Fatalf("%d attempts in 30ms with backoffs of at most 5ms", attempts)
		}
	})
}

func TestLoopContextCause(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cause := errors.New("gone")
		ctx, cancel := context.WithCancelCause(context.Background())
		time.AfterFunc(20*time.Millisecond, func() { cancel(cause) })
		start := time.Now()
		err := Loop(ctx, nil, time.Millisecond, 5*time.Millisecond, 0, false, func() (bool, error) { return false, nil })
		if err != cause {
			t.Fatalf("err %v", err)
		}
		if d := time.Since(start); d != 20*time.Millisecond {
			t.Fatalf("returned %v after the start; want when ctx ended, 20ms", d)
		}
	})
}

// A watch wakes the waiter long before its backoff would: with a backoff of an hour,
// no time passes at all. It is set up before every attempt, with watchFirst; without
// it, from the second attempt on.
func TestLoopWatchWakes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		watches, n := 0, 0
		watch := func(ctx context.Context) (<-chan struct{}, error) {
			watches++
			ch := make(chan struct{})
			close(ch) // a change at once
			return ch, nil
		}
		p, log := record()
		start := time.Now()
		err := Loop(WithProbe(context.Background(), p), watch, time.Hour, time.Hour, 0, true, func() (bool, error) {
			n++
			return n == 3, nil
		})
		if err != nil || n != 3 || watches != 3 {
			t.Fatalf("err %v, %d attempts, %d watches", err, n, watches)
		}
		if d := time.Since(start); d != 0 {
			t.Fatalf("the watch did not wake it: %v passed", d)
		}
		if got, want := log(), []Why{First, Watched, Watched}; !slices.Equal(got, want) {
			t.Fatalf("attempts ran for %v; want %v", got, want)
		}
		// Without watchFirst the first attempt is not watched; a watch that fails: the
		// loop polls, and the probe counts the failures.
		n, watches = 0, 0
		p, log = record()
		err = Loop(WithProbe(context.Background(), p), func(context.Context) (<-chan struct{}, error) { watches++; return nil, errors.New("no watch") },
			time.Millisecond, time.Millisecond, 0, false, func() (bool, error) { n++; return n == 3, nil })
		if err != nil || watches != 2 || p.WatchErrors() != 2 {
			t.Fatalf("err %v, %d watches, %d watch errors", err, watches, p.WatchErrors())
		}
		if got, want := log(), []Why{First, Polled, Polled}; !slices.Equal(got, want) {
			t.Fatalf("attempts ran for %v; want %v", got, want)
		}
	})
}

// A probe's Poll stretches the backoff of watched turns only: a waiter then wakes when
// the watch fires, at that very moment; a loop without a watch keeps its backoff, and
// so does a turn whose watch failed.
func TestProbePoll(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p, log := record()
		p.Poll = time.Hour
		ctx := WithProbe(context.Background(), p)
		changed := make(chan struct{})
		time.AfterFunc(5*time.Second, func() { close(changed) })
		watch := func(context.Context) (<-chan struct{}, error) { return changed, nil }
		start := time.Now()
		var at []time.Duration
		err := Loop(ctx, watch, time.Millisecond, time.Millisecond, time.Minute, true, func() (bool, error) {
			at = append(at, time.Since(start))
			return len(at) == 2, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if want := []time.Duration{0, 5 * time.Second}; !slices.Equal(at, want) {
			t.Fatalf("attempts at %v; want %v: only the watch may wake the waiter", at, want)
		}
		if got, want := log(), []Why{First, Watched}; !slices.Equal(got, want) {
			t.Fatalf("attempts ran for %v; want %v", got, want)
		}

		// Poll is also cut short by the wait's end.
		start = time.Now()
		never := make(chan struct{})
		err = Loop(ctx, func(context.Context) (<-chan struct{}, error) { return never, nil }, time.Millisecond, time.Millisecond, time.Minute, true,
			func() (bool, error) { return false, nil })
		if err != ErrOver || time.Since(start) != time.Minute {
			t.Fatalf("err %v after %v; want ErrOver after the wait, 1m", err, time.Since(start))
		}

		// No watch, or a failed one: the backoff stays.
		for name, w := range map[string]Watch{
			"no watch":     nil,
			"failed watch": func(context.Context) (<-chan struct{}, error) { return nil, errors.New("down") },
		} {
			start, n := time.Now(), 0
			err := Loop(ctx, w, time.Millisecond, time.Millisecond, 0, true, func() (bool, error) { n++; return n == 3, nil })
			// Bubble time, exact: two backoffs of 0.5 to 1 ms (full jitter), whatever
			// the machine's load.
			if d := time.Since(start); err != nil || d < time.Millisecond || d > 2*time.Millisecond {
				t.Fatalf("%s: err %v after %v; want done after two backoffs of 0.5 to 1ms", name, err, d)
			}
		}
	})
}

// Bounded returns when ctx ends, even though f ignores its ctx.
func TestBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
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
		if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) != 20*time.Millisecond {
			t.Fatalf("err %v after %v; want the deadline's error at its time, 20ms", err, time.Since(start))
		}
	})
}
