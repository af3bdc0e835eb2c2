package rediscache_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/cachekit/cache"
	"github.com/cachekit/cache/drivers/rediscache"
	"github.com/cachekit/cache/internal/xproc"
)

// The cross-process tests (lockx_process_test.go, modify_process_test.go, the mutual
// exclusion proof of proof_test.go) run the test binary again as child processes through
// internal/xproc: TestMain hands them to child.Main, which runs their job and exits. What
// is Redis's own is here: how a child opens its cache, the Redis-only jobs, and the
// shared scenarios' view of a Redis.

// child is the Redis driver's side of the child processes: a driver on the job's URL,
// cache.New with its prefix, and the jobs of the mutual exclusion proof.
var child = xproc.Child{
	Open: func(job xproc.Job) (*cache.Cache, func() error, error) {
		d, err := rediscache.New(rediscache.Options{URL: job.Addr})
		if err != nil {
			return nil, nil, err
		}
		var drv cache.Driver = d
		if job.DeafWatch {
			drv = lxDeafWatch{d}
		}
		c, err := cache.New(cache.Config{Drivers: map[string]cache.Driver{"redis": drv}, Prefix: job.Prefix})
		return c, nil, err
	},
	Modes: map[string]xproc.Mode{"lock": xproc.OnGo(lockChild), "naive": xproc.OnGo(lockChild)},
}

// lxDeafWatch is the driver whose Watch never reports a release (its channel closes only
// when the watch's ctx ends), as if the release's PUBLISH were lost: a lock waiter then
// wakes on its backoff-and-jitter poll alone. The handoff's negative control.
type lxDeafWatch struct{ *rediscache.Driver }

func (lxDeafWatch) Watch(ctx context.Context, _ string) (<-chan struct{}, error) {
	ch := make(chan struct{})
	context.AfterFunc(ctx, func() { close(ch) })
	return ch, nil
}

// xtarget is the Redis at url as the shared scenarios see it: a fresh key prefix for
// each scenario, flushed at the end of the test.
func xtarget(url string) xproc.Target {
	return xproc.Target{
		Fresh: func(t *testing.T, name string) xproc.Store {
			prefix := scope(name)
			newCache(t, url, prefix) // flushes the prefix at the end
			return xproc.Store{Addr: url, Prefix: prefix}
		},
		Open: func(t *testing.T, s xproc.Store) *cache.Cache {
			c, _ := newCache(t, s.Addr, s.Prefix)
			return c
		},
	}
}

// childResult is what one process of the mutual exclusion proof reports.
type childResult struct {
	ID       int    `json:"id"`
	PID      int    `json:"pid"`
	Acquired int    `json:"acquired"`
	Skipped  int    `json:"skipped"`
	Overlaps int    `json:"overlaps"`
	Errors   int    `json:"errors"`
	FirstErr string `json:"first_err,omitempty"`
}

// lockChild is one process of the cross-process lock test: on "go" it makes its N
// attempts on one lock key with its own client. Inside fn an overlap detector INCRs a
// marker, which must be 1, holds a moment and DECRs it.
//
// Mode "naive" locks with a get-then-set instead of the driver's SET NX: the negative
// control, which shows that the detector catches a lock that does not exclude.
func lockChild(ctx context.Context, w *xproc.Worker) (childResult, error) {
	c := w.C
	res := childResult{ID: w.Job.ID, PID: os.Getpid()}
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
		case "lock":
			out, err := cache.Lock(ctx, c, "lock.shared", 10*time.Second, inside)
			switch {
			case err != nil:
				note(err)
			case out.Acquired:
				res.Acquired++
			default:
				res.Skipped++
			}
		case "naive": // check, then set: two steps, so two processes can both pass
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

// runProcesses starts n child processes in mode ("lock" or "naive") against url under
// prefix, each making attempts attempts, gives them "go" together once all are ready
// (connected), and returns their results.
func runProcesses(t *testing.T, mode, url, prefix string, n, attempts int) []childResult {
	t.Helper()
	newCache(t, url, prefix) // flushes the prefix at the end
	ps := xproc.StartN(t, n, xproc.Job{Mode: mode, Store: xproc.Store{Addr: url, Prefix: prefix}, N: attempts})
	xproc.Go(ps)
	results := make([]childResult, n)
	for i, p := range ps {
		p.Result(&results[i])
	}
	return results
}
