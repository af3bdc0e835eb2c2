package rediscache_test

import (
	"context"
	"errors"
	"os"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cachekit/cache"
	"github.com/cachekit/cache/drivers/rediscache"
	"github.com/cachekit/cache/internal/testkit/redistest"
	"github.com/cachekit/cache/internal/testkit/xproc"
)

// The near cache across processes: one process writes a key, three read it through
// their near caches, each with its own driver and tracking connection. See
// TestNearProcesses.

func init() {
	if child.Modes == nil {
		child.Modes = make(map[string]xproc.Mode)
	}
	child.Modes["near-write"] = xproc.OnGo(nearWrite)
	child.Modes["near-read"] = nearRead
}

// nearCohKey is the key the processes share.
const nearCohKey = "near.coherence"

// nearWrite writes 1 … N to the key with a plain client (as another service would),
// one every Hold, and returns when each write was acknowledged (Unix ns).
func nearWrite(ctx context.Context, w *xproc.Worker) ([]int64, error) {
	o, err := redis.ParseURL(w.Job.Addr)
	if err != nil {
		return nil, err
	}
	c := redis.NewClient(o)
	defer c.Close()
	acks := make([]int64, 0, w.Job.N)
	next := time.Now()
	for i := 1; i <= w.Job.N; i++ {
		if err := c.Set(ctx, nearCohKey, strconv.Itoa(i), 0).Err(); err != nil {
			return nil, err
		}
		acks = append(acks, time.Now().UnixNano())
		next = next.Add(w.Job.Hold)
		if d := time.Until(next); d > 0 {
			time.Sleep(d)
		} else {
			next = time.Now() // behind: no burst to catch up
		}
	}
	return acks, nil
}

// nearRun is what a reader saw of one value: the first and the last read that returned
// it (their start times, Unix ns).
type nearRun struct {
	V     int   `json:"v"`
	First int64 `json:"f"`
	Last  int64 `json:"l"`
}

// nearReadResult is a reader's result.
type nearReadResult struct {
	Runs   []nearRun `json:"runs"`
	Reads  int64     `json:"reads"`
	Errors int64     `json:"errors"`
}

// nearRead reads the key through a near cache (MaxStaleness Job.TTL) until the order
// "stop", and reports the runs of values it saw.
func nearRead(ctx context.Context, w *xproc.Worker) error {
	d, err := rediscache.New(rediscache.Options{URL: w.Job.Addr, Near: &rediscache.NearOptions{MaxStaleness: w.Job.TTL}})
	if err != nil {
		return err
	}
	defer d.Close()
	c, err := cache.New(cache.Config{Drivers: map[string]cache.Driver{"redis": d}})
	if err != nil {
		return err
	}
	defer c.Close()
	w.Send(xproc.Msg{K: "tracking", PID: os.Getpid()})
	if err := w.Expect("go"); err != nil {
		return err
	}
	var stop atomic.Bool
	go func() { _, _ = w.Recv(); stop.Store(true) }() // "stop", or stdin closed
	var r nearReadResult
	for !stop.Load() {
		start := time.Now().UnixNano()
		v, ok, err := cache.GetAs[int](ctx, c, nearCohKey)
		r.Reads++
		if err != nil || !ok {
			r.Errors++
			if ctx.Err() != nil {
				return errors.Join(err, ctx.Err())
			}
			continue
		}
		if n := len(r.Runs); n > 0 && r.Runs[n-1].V == v {
			r.Runs[n-1].Last = start
			continue
		}
		r.Runs = append(r.Runs, nearRun{V: v, First: start, Last: start})
	}
	return w.Result(r)
}

// TestNearProcesses: one process writes an increasing counter to a key every
// millisecond (about 12 000 writes through a plain client) while three processes read it
// continuously through their near caches (MaxStaleness 100 ms). From the acknowledgement
// time of each write and the reads' start times (one machine, one wall clock):
//
//   - stale reads: a read that began more than MaxStaleness after the write that
//     replaced the value it returned. There must be none.
//   - the window: for each write and reader, from the write's acknowledgement to the
//     start of the reader's first read that returned it or a later value (p50, p99,
//     max, logged for docs/near-cache.md).
//
// Redis counts the GETs it served, to show that most reads were near hits.
func TestNearProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("about 15 s")
	}
	srv := redistest.Start(t)
	const (
		writes  = 12_000
		every   = time.Millisecond
		window  = 100 * time.Millisecond
		readers = 3
	)
	other := plain(t, srv.URL())
	if err := other.Set(context.Background(), nearCohKey, "0", 0).Err(); err != nil {
		t.Fatal(err)
	}
	store := xproc.Store{Addr: srv.URL()}
	rs := make([]*xproc.Proc, readers)
	for i := range rs {
		rs[i] = xproc.Start(t, xproc.Job{Mode: "near-read", Store: store, ID: i, TTL: window})
	}
	for _, r := range rs {
		r.Next("ready")
		r.Next("tracking")
	}
	wr := xproc.Start(t, xproc.Job{Mode: "near-write", Store: store, N: writes, Hold: every})
	wr.Next("ready")
	before := getCalls(t, other)
	xproc.Go(rs)
	time.Sleep(200 * time.Millisecond) // readers warm
	wr.Send("go")
	var acks []int64
	wr.Result(&acks)
	time.Sleep(2 * window) // the last writes reach every reader
	results := make([]nearReadResult, readers)
	for i, r := range rs {
		r.Send("stop")
		r.Result(&results[i])
	}
	gets := getCalls(t, other) - before
	if len(acks) != writes {
		t.Fatalf("%d writes acknowledged; want %d", len(acks), writes)
	}
	ack := func(v int) int64 { return acks[v-1] } // value v ≥ 1
	var lags []time.Duration
	var stale, reads, errs int64
	var worst time.Duration
	for i, r := range results {
		reads += r.Reads
		errs += r.Errors
		runs := r.Runs
		if len(runs) == 0 {
			t.Fatalf("reader %d read nothing", i)
		}
		for j, run := range runs {
			if j > 0 && run.V < runs[j-1].V {
				t.Errorf("reader %d went back from %d to %d", i, runs[j-1].V, run.V)
			}
			if run.V < writes {
				// run.V was replaced by run.V+1: the last read of it must not begin more
				// than the window after that.
				by := time.Duration(run.Last - ack(run.V+1))
				worst = max(worst, by)
				if by > window {
					stale++
					if stale <= 5 {
						t.Errorf("reader %d: a read began %v after %d replaced %d, and returned %d", i, by, run.V+1, run.V, run.V)
					}
				}
			}
		}
		// The window: write v is seen from the first run with a value ≥ v.
		j := 0
		for v := 1; v <= writes; v++ {
			for j < len(runs) && runs[j].V < v {
				j++
			}
			if j == len(runs) {
				t.Errorf("reader %d never saw value %d", i, v)
				break
			}
			if runs[j].First < acks[0] {
				continue // read before the writes began
			}
			lags = append(lags, time.Duration(runs[j].First-ack(v)))
		}
	}
	slices.Sort(lags)
	pct := func(p float64) time.Duration { return lags[min(len(lags)-1, int(p*float64(len(lags))))] }
	t.Logf("%d writes over %v; %d readers, %d reads (%d failed), %d served by Redis (%.1f%% near hits)",
		writes, time.Duration(acks[len(acks)-1]-acks[0]).Round(time.Millisecond), readers, reads, errs, gets, 100*float64(reads-gets)/float64(reads))
	t.Logf("window (write acknowledged → a reader no longer sees the old value), %d samples: p50 %v, p99 %v, max %v",
		len(lags), pct(0.5), pct(0.99), lags[len(lags)-1])
	t.Logf("stale reads beyond MaxStaleness (%v): %d; the longest a read began after its value was replaced: %v", window, stale, worst)
	if stale > 0 {
		t.Errorf("%d stale reads beyond the window", stale)
	}
}
