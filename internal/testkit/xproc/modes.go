package xproc

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/goleak"

	"github.com/cachekit/cache"
	"github.com/cachekit/cache/internal/wait"
)

// modes are the shared jobs of a child process. They only use the cache, so every
// driver runs the same ones.
var modes = map[string]Mode{
	"fence":          fence,
	"hold":           hold,
	"contend":        contend,
	"lost":           lost,
	"handoff-holder": handoffHolder,
	"handoff-waiter": handoffWaiter,
	"remember":       rememberOrOnce,
	"once":           rememberOrOnce,
	"modify":         OnGo(modify),
	"modify-naive":   OnGo(modify),
	"push":           OnGo(modify),
	"mutex":          OnGo(mutex),
	"mutex-naive":    OnGo(mutex),
}

// fence: on "go", N fenced acquisitions, waiting for each. Inside fn: the token must be
// above the highest one any holder saw, a record that only fn reads and writes. The
// result has the tokens in order, and the violations of the record.
func fence(ctx context.Context, w *Worker) error {
	c := w.C
	if err := w.Expect("go"); err != nil {
		return err
	}
	var res Msg
	for range w.Job.N {
		o, err := cache.LockWith(ctx, c, "lx.fenced", cache.LockOptions{TTL: 10 * time.Second, Fencing: true, Wait: time.Minute},
			func(ctx context.Context) (struct{}, error) {
				tok := cache.HeldLock(ctx).FencingToken()
				if tok == 0 {
					return struct{}{}, errors.New("no fencing token inside fn")
				}
				var highest int64
				if _, err := c.Get(ctx, "lx.highest", &highest); err != nil {
					return struct{}{}, err
				}
				if tok <= highest {
					res.Viol++
				}
				res.Tokens = append(res.Tokens, tok)
				return struct{}{}, c.Set(ctx, "lx.highest", max(tok, highest), time.Hour)
			})
		if err != nil || !o.Acquired {
			return fmt.Errorf("fenced lock %d: %+v, %w", len(res.Tokens), o, err)
		}
	}
	res.K = "result"
	w.Send(res)
	return nil
}

// hold: on "go", hold the lock "lx.ae" for Hold, with or without AutoExtend. fn ignores
// its ctx, as work that does not check it would: only the lock keeps others out. It
// reports when fn started (T) and ended (T2), and the lease's end as the holder knew it
// then (T3: HeldLock's ValidUntil, moved by each confirmed renewal).
func hold(ctx context.Context, w *Worker) error {
	job := w.Job
	if err := w.Expect("go"); err != nil {
		return err
	}
	var start, end, until int64
	var cause error
	_, err := cache.LockWith(ctx, w.C, "lx.ae", cache.LockOptions{TTL: job.TTL, AutoExtend: job.AutoExtend},
		func(fctx context.Context) (struct{}, error) {
			start = time.Now().UnixNano()
			w.Send(Msg{K: "held", T: start})
			time.Sleep(job.Hold)
			cause = context.Cause(fctx)
			end = time.Now().UnixNano()
			until = cache.HeldLock(fctx).ValidUntil().UnixNano()
			return struct{}{}, nil
		})
	if start == 0 {
		return fmt.Errorf("the holder did not get the lock: %v", err)
	}
	res := Msg{K: "result", T: start, T2: end, T3: until, Lost: errors.Is(err, cache.ErrLockLost), CauseLost: errors.Is(cause, cache.ErrLockLost)}
	if err != nil {
		res.Err = err.Error()
	}
	if cause != nil {
		res.Cause = cause.Error()
	}
	w.Send(res)
	return nil
}

// contend: try to take "lx.ae" every TTL/4 from "go" to "stop"; report every attempt and
// every acquisition (when fn ran).
func contend(ctx context.Context, w *Worker) error {
	if err := w.Expect("go"); err != nil {
		return err
	}
	stop := make(chan error, 1)
	go func() { stop <- w.Expect("stop") }()
	var res Msg
	t := time.NewTicker(w.Job.TTL / 4)
	defer t.Stop()
	for {
		res.Attempts = append(res.Attempts, time.Now().UnixNano())
		_, err := cache.Lock(ctx, w.C, "lx.ae", w.Job.TTL, func(context.Context) (struct{}, error) {
			res.Times = append(res.Times, time.Now().UnixNano())
			return struct{}{}, nil
		})
		if err != nil {
			return err
		}
		select {
		case err := <-stop:
			if err != nil {
				return err
			}
			res.K = "result"
			w.Send(res)
			return nil
		case <-t.C:
		}
	}
}

// lost: N rounds: on "go", hold "lx.lost" under AutoExtend until fn's ctx ends (the
// parent takes the lock away or kills the store meanwhile), and report when and why it
// ended. With LeakCheck, the cache is closed after the round and no goroutine may be
// left.
func lost(ctx context.Context, w *Worker) error {
	job, c := w.Job, w.C
	for range job.N {
		switch order, err := w.Recv(); {
		case err != nil:
			return err
		case order == "stop": // fewer rounds than N were needed
			return nil
		case order != "go":
			return fmt.Errorf("got order %q; want go or stop", order)
		}
		var ended int64
		var cause error
		_, err := cache.LockWith(ctx, c, "lx.lost", cache.LockOptions{TTL: job.TTL, AutoExtend: true},
			func(fctx context.Context) (struct{}, error) {
				w.Send(Msg{K: "held", T: time.Now().UnixNano()})
				select {
				case <-fctx.Done():
				case <-time.After(job.Hold): // a hang detector (LostHold)
					return struct{}{}, fmt.Errorf("fn's ctx was not cancelled in %v", job.Hold)
				}
				ended = time.Now().UnixNano()
				cause = context.Cause(fctx)
				return struct{}{}, fctx.Err()
			})
		if ended == 0 {
			return fmt.Errorf("fn's ctx did not end: %v", err)
		}
		res := Msg{K: "result", T: ended, Lost: errors.Is(err, cache.ErrLockLost), CauseLost: errors.Is(cause, cache.ErrLockLost)}
		if err != nil {
			res.Err = err.Error()
		}
		if cause != nil {
			res.Cause = cause.Error()
		}
		if job.LeakCheck {
			// Everything the lock and the driver started must end with Close.
			_ = c.Close()
			if err := goleak.Find(); err != nil {
				res.Leak = err.Error()
			}
		}
		w.Send(res)
	}
	return nil
}

// handoffHolder: N rounds: take "lx.ho" on "hold", say "held", and return from fn on
// "release"; report when fn returned (T) and when Lock returned (T2).
func handoffHolder(ctx context.Context, w *Worker) error {
	for i := range w.Job.N {
		if err := w.Expect("hold"); err != nil {
			return err
		}
		var returned int64
		o, err := cache.Lock(ctx, w.C, "lx.ho", 10*time.Second, func(context.Context) (struct{}, error) {
			w.Send(Msg{K: "held"})
			if err := w.Expect("release"); err != nil {
				return struct{}{}, err
			}
			returned = time.Now().UnixNano()
			return struct{}{}, nil
		})
		if err != nil || !o.Acquired {
			return fmt.Errorf("holder, round %d: %+v, %w", i, o, err)
		}
		w.Send(Msg{K: "rel", T: returned, T2: time.Now().UnixNano()})
	}
	return nil
}

// handoffWaiter: N rounds: on "wait", wait for "lx.ho" (LockOptions.Wait of a minute, a
// hang detector), say "waiting" once its first attempt has failed, and report when its
// fn started (T), why its winning attempt ran (Woken: a wait.Why) and how many of its
// turns had no watch because Watch failed (N). A wait.Probe stretches its poll to an
// hour, so that only the release's notification can wake it before the Wait ends; with
// DeafWatch the poll keeps its backoff, and only the poll can wake it.
func handoffWaiter(ctx context.Context, w *Worker) error {
	for i := range w.Job.N {
		if err := w.Expect("wait"); err != nil {
			return err
		}
		p := &wait.Probe{}
		if !w.Job.DeafWatch {
			p.Poll = time.Hour
		}
		var once sync.Once
		p.Tried = func(_ wait.Why, done bool, err error) {
			if !done && err == nil {
				once.Do(func() { w.Send(Msg{K: "waiting"}) })
			}
		}
		o, err := cache.LockWith(wait.WithProbe(ctx, p), w.C, "lx.ho", cache.LockOptions{TTL: 10 * time.Second, Wait: time.Minute},
			func(context.Context) (int64, error) { return time.Now().UnixNano(), nil })
		if err != nil || !o.Acquired {
			return fmt.Errorf("waiter, round %d: %+v, %w", i, o, err)
		}
		why, _ := p.Done()
		w.Send(Msg{K: "acq", T: o.Value, Woken: why.String(), N: int(p.WatchErrors())})
	}
	return nil
}

// rememberOrOnce: on "go", G goroutines at once on one cold key: RememberWith
// (Distributed or not) or Once. The loader counts its runs in the store ("lx.loads") and
// in the process, and takes 100 ms.
func rememberOrOnce(ctx context.Context, w *Worker) error {
	job, c := w.Job, w.C
	if err := w.Expect("go"); err != nil {
		return err
	}
	var mu sync.Mutex
	res := Msg{K: "result", Vals: map[string]int{}}
	var loads, ran atomic.Int64
	loader := func(ctx context.Context) (string, error) {
		n, err := c.Increment(ctx, "lx.loads", 1)
		if err != nil {
			return "", err
		}
		loads.Add(1)
		time.Sleep(100 * time.Millisecond)
		if job.Mode == "remember" && !job.Distributed {
			// The negative control: this load is not stored until another process's
			// load has begun, so that a starved machine, which may run one process's
			// whole load before the others read, cannot hide that each process loads
			// on its own. (With Distributed the others would wait for this one.)
			waitLoads(ctx, c, 2)
		}
		return fmt.Sprintf("load %d by pid %d", n, os.Getpid()), nil
	}
	var wg sync.WaitGroup
	var errs []error
	start := make(chan struct{})
	for range job.G {
		wg.Go(func() {
			<-start
			var v string
			var err error
			if job.Mode == "once" {
				var o cache.OnceOutcome[string]
				o, err = cache.Once(ctx, c, "lx.once", time.Hour, loader)
				if o.Ran {
					ran.Add(1)
				}
				v = o.Value
			} else {
				v, err = cache.RememberWith(ctx, c, "lx.cold", cache.RememberOptions{TTL: time.Hour, Distributed: job.Distributed}, loader)
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			res.Vals[v]++
		})
	}
	close(start)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%d of %d calls failed: %w", len(errs), job.G, err)
	}
	res.N, res.Ran = int(loads.Load()), int(ran.Load())
	w.Send(res)
	return nil
}

// waitLoads waits until the count of loads in c ("lx.loads") reaches n, or for a
// minute (a hang detector: the test then fails on its count).
func waitLoads(ctx context.Context, c *cache.Cache, n int64) {
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		var got int64
		if ok, err := c.Get(ctx, "lx.loads", &got); err == nil && ok && got >= n {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Tally is the value the modify processes increment: a struct with a map, which a
// compare-and-swap by Go's == could not handle, as JSON in the store.
type Tally struct {
	N  int            `json:"n"`
	By map[string]int `json:"by"` // increments per process, by ID
}

// ModResult is what one modify or push process reports.
type ModResult struct {
	ID       int    `json:"id"`
	PID      int    `json:"pid"`
	Done     int    `json:"done"`      // operations that returned without error
	Calls    int    `json:"calls"`     // calls of the Modify fn (Done + CAS retries)
	MaxCalls int    `json:"max_calls"` // the most fn calls one Modify needed
	Errors   int    `json:"errors"`
	Conflict int    `json:"conflict"` // errors that match cache.ErrConflict
	FirstErr string `json:"first_err,omitempty"`
}

// Item is what the push processes append: who pushed it and its rank in that process.
type Item struct {
	P int `json:"p"`
	I int `json:"i"`
}

// modify: on "go", N operations: "modify" increments "tally" with cache.Modify
// (ModifyWith when MaxAttempts is set), "modify-naive" with a Get then a Set (two steps,
// another process may write between), "push" pushes Items to the List "list". The
// result is a ModResult.
func modify(ctx context.Context, w *Worker) (ModResult, error) {
	job, c := w.Job, w.C
	res := ModResult{ID: job.ID, PID: os.Getpid()}
	me := strconv.Itoa(job.ID)
	note := func(err error) {
		res.Errors++
		if errors.Is(err, cache.ErrConflict) {
			res.Conflict++
		}
		if res.FirstErr == "" {
			res.FirstErr = err.Error()
		}
	}
	list := cache.NewList[Item](c, "list", time.Minute)
	for i := range job.N {
		switch job.Mode {
		case "modify":
			calls := 0
			inc := func(cur Tally, _ bool) (Tally, error) {
				calls++
				if cur.By == nil {
					cur.By = map[string]int{}
				}
				cur.N++
				cur.By[me]++
				return cur, nil
			}
			var err error
			if job.MaxAttempts == 0 {
				_, err = cache.Modify(ctx, c, "tally", inc)
			} else {
				_, err = cache.ModifyWith(ctx, c, "tally", cache.ModifyOptions{MaxAttempts: job.MaxAttempts}, inc)
			}
			res.Calls += calls
			res.MaxCalls = max(res.MaxCalls, calls)
			if err != nil {
				note(err)
				continue
			}
		case "modify-naive":
			var cur Tally
			if _, err := c.Get(ctx, "tally", &cur); err != nil {
				note(err)
				continue
			}
			res.Calls++
			if cur.By == nil {
				cur.By = map[string]int{}
			}
			cur.N++
			cur.By[me]++
			if err := c.Set(ctx, "tally", cur, time.Minute); err != nil {
				note(err)
				continue
			}
		case "push":
			if _, err := list.Push(ctx, Item{P: job.ID, I: i}); err != nil {
				note(err)
				continue
			}
		}
		res.Done++
	}
	return res, nil
}

// mutexResult is what one process of the mutual exclusion proof reports.
type mutexResult struct {
	ID       int    `json:"id"`
	PID      int    `json:"pid"`
	Acquired int    `json:"acquired"`
	Skipped  int    `json:"skipped"`
	Overlaps int    `json:"overlaps"`
	Errors   int    `json:"errors"`
	FirstErr string `json:"first_err,omitempty"`
}

// mutex: on "go", N attempts at one lock key with the process's own driver ("mutex":
// cache.Lock, which does not wait). Inside fn an overlap detector increments a marker,
// which must be 1, holds a moment and decrements it.
//
// Mode "mutex-naive" locks with a get-then-set instead of the driver's lock: the negative
// control, which shows that the detector catches a lock that does not exclude.
func mutex(ctx context.Context, w *Worker) (mutexResult, error) {
	c := w.C
	res := mutexResult{ID: w.Job.ID, PID: os.Getpid()}
	inside := func(ctx context.Context) (struct{}, error) {
		n, err := c.Increment(ctx, "inside", 1)
		if err != nil {
			return struct{}{}, err
		}
		if n != 1 {
			res.Overlaps++
		}
		time.Sleep(300 * time.Microsecond) // hold it: an overlap has time to show
		_, err = c.Decrement(ctx, "inside", 1)
		return struct{}{}, err
	}
	note := func(err error) {
		res.Errors++
		if res.FirstErr == "" {
			res.FirstErr = err.Error()
		}
	}
	for range w.Job.N {
		switch w.Job.Mode {
		case "mutex":
			out, err := cache.Lock(ctx, c, "lock.shared", 10*time.Second, inside)
			switch {
			case err != nil:
				note(err)
			case out.Acquired:
				res.Acquired++
			default:
				res.Skipped++
			}
		case "mutex-naive": // check, then set: two steps, so two processes can both pass
			held, err := c.Has(ctx, "lock.naive")
			if err != nil {
				note(err)
				continue
			}
			if held {
				res.Skipped++
				continue
			}
			if err := c.Set(ctx, "lock.naive", "me", 10*time.Second); err != nil {
				note(err)
				continue
			}
			res.Acquired++
			if _, err := inside(ctx); err != nil {
				note(err)
			}
			if err := c.Remove(ctx, "lock.naive"); err != nil {
				note(err)
			}
		default:
			return res, fmt.Errorf("unknown mode %q", w.Job.Mode)
		}
	}
	return res, nil
}
