package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cachekit/cache"
	"github.com/cachekit/cache/drivers/memorycache"
)

// demoReport counts what happened in each recipe, for the tests.
type demoReport struct {
	CronRan, CronSkipped int

	WebhookProcessed, WebhookAcked int
	WebhookRetryRan                bool // a delivery after processing finished ran again

	OnceRuns       int64 // how many times Once ran the handler, for all deliveries
	OnceRan        int   // deliveries whose Once call ran it (Ran == true)
	OnceSameValue  int   // deliveries that got the handler's result
	OnceRetrySkips bool  // the late retry did not run it, and got the result

	ReportOwnerSeen string // the owner label the second worker read with Get
	ReportSkipped   bool   // the second worker's own LockWith got Acquired == false
	ReportReleased  bool   // Get found no lock after the first worker returned

	RememberCallers, RememberSameValue int
	LoaderRuns                         int64
}

// holdTimeout bounds how long a lock holder waits for the others to try. It is only
// reached if the lock let two workers in, and then the demo fails instead of hanging.
const holdTimeout = 5 * time.Second

// runDemo plays the recipes on one in-process memory driver and writes what happened to
// w. Goroutines stand in for servers: an in-process driver locks within one process.
func runDemo(ctx context.Context, w io.Writer) (demoReport, error) {
	var rep demoReport
	mem, err := memorycache.New(memorycache.Options{})
	if err != nil {
		return rep, err
	}
	c, err := cache.New(cache.Config{Drivers: map[string]cache.Driver{"memory": mem}})
	if err != nil {
		return rep, err
	}
	defer c.Close()

	fmt.Fprintln(w, "cachekit demo: the lock guide's recipes on the in-process memory driver.")
	fmt.Fprintln(w, "Goroutines stand in for servers: an in-process driver locks within one process.")
	for _, step := range []func(context.Context, io.Writer, *cache.Cache, *demoReport) error{
		cronDemo, webhookDemo, onceDemo, reportDemo, rememberDemo,
	} {
		fmt.Fprintln(w)
		if err := step(ctx, w, c, &rep); err != nil {
			return rep, err
		}
	}
	return rep, nil
}

// gate makes a contended lock deterministic: the holder keeps the lock until every other
// worker has tried and skipped, so each attempt overlaps the held lock whatever the
// scheduler does.
type gate struct {
	skipped chan struct{}
	others  int
}

func newGate(workers int) *gate {
	return &gate{skipped: make(chan struct{}, workers), others: workers - 1}
}

// skip records that a worker found the lock held.
func (g *gate) skip() { g.skipped <- struct{}{} }

// wait blocks, inside the holder's fn, until every other worker has skipped.
func (g *gate) wait(ctx context.Context) error {
	timeout := time.After(holdTimeout)
	for i := range g.others {
		select {
		case <-g.skipped:
		case <-timeout:
			return fmt.Errorf("only %d of the other %d workers skipped: did two workers get the lock?", i, g.others)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// together runs f(0) … f(n-1) in goroutines released at the same moment and waits for
// all of them.
func together(n int, f func(i int)) {
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			f(i)
		})
	}
	close(start)
	wg.Wait()
}

// cronDemo: every server fires the 3 am cron; one acquires the lock and runs, the rest
// get Acquired == false and do nothing.
func cronDemo(ctx context.Context, w io.Writer, c *cache.Cache, rep *demoReport) error {
	const servers = 5
	fmt.Fprintf(w, "1. Cron job on one server: %d servers fire lock.cleanup at once\n", servers)
	fmt.Fprintln(w, `   cache.Lock(ctx, c, "lock.cleanup", 30*time.Minute, cleanup)`)

	g := newGate(servers)
	outs := make([]cache.LockOutcome[int], servers)
	errs := make([]error, servers)
	together(servers, func(i int) {
		outs[i], errs[i] = cache.Lock(ctx, c, "lock.cleanup", 30*time.Minute, func(ctx context.Context) (int, error) {
			// db.cleanup(), held until every other server has tried.
			return 42, g.wait(ctx)
		})
		if errs[i] == nil && !outs[i].Acquired {
			g.skip()
		}
	})
	for i, out := range outs {
		switch {
		case errs[i] != nil:
			return fmt.Errorf("cron: server-%d: %w", i+1, errs[i])
		case out.Acquired:
			rep.CronRan++
			fmt.Fprintf(w, "   server-%d  ran cleanup: removed %d expired sessions\n", i+1, out.Value)
		default:
			rep.CronSkipped++
			fmt.Fprintf(w, "   server-%d  skipped: another server is already running cleanup\n", i+1)
		}
	}
	fmt.Fprintf(w, "   => %d ran, %d skipped\n", rep.CronRan, rep.CronSkipped)
	return nil
}

// webhookDemo: the same event delivered 20 times at once is processed once; a delivery
// that arrives after processing finished runs again, because the lock is gone by then.
func webhookDemo(ctx context.Context, w io.Writer, c *cache.Cache, rep *demoReport) error {
	const deliveries = 20
	const eventID = "evt_1Nq2"
	key := "webhook.stripe." + eventID
	fmt.Fprintf(w, "2. Webhook with a lock, which skips concurrent duplicates only: %d concurrent deliveries of event %s\n", deliveries, eventID)
	fmt.Fprintf(w, "   cache.Lock(ctx, c, %q, 24*time.Hour, processStripeEvent)\n", key)

	var processed atomic.Int64
	process := func(context.Context) (string, error) {
		processed.Add(1)
		return "charge.succeeded recorded", nil
	}
	g := newGate(deliveries)
	outs := make([]cache.LockOutcome[string], deliveries)
	errs := make([]error, deliveries)
	together(deliveries, func(i int) {
		outs[i], errs[i] = cache.Lock(ctx, c, key, 24*time.Hour, func(ctx context.Context) (string, error) {
			v, err := process(ctx)
			if err != nil {
				return v, err
			}
			return v, g.wait(ctx) // still processing while the other deliveries arrive
		})
		if errs[i] == nil && !outs[i].Acquired {
			g.skip()
		}
	})
	for i, out := range outs {
		switch {
		case errs[i] != nil:
			return fmt.Errorf("webhook: delivery %d: %w", i+1, errs[i])
		case out.Acquired:
			rep.WebhookProcessed++
			fmt.Fprintf(w, "   delivery %2d  200 processed: %s\n", i+1, out.Value)
		default:
			rep.WebhookAcked++
		}
	}
	fmt.Fprintf(w, "   other %d deliveries  200 already-processed (lock held, fn not run)\n", rep.WebhookAcked)
	fmt.Fprintf(w, "   => processed %d time(s) for %d concurrent deliveries\n", processed.Load(), deliveries)

	// Stripe retries later; by then the first delivery has returned and released the lock.
	out, err := cache.Lock(ctx, c, key, 24*time.Hour, process)
	if err != nil {
		return fmt.Errorf("webhook: late retry: %w", err)
	}
	rep.WebhookRetryRan = out.Acquired
	if out.Acquired {
		fmt.Fprintln(w, "   late retry, after processing finished: processed AGAIN")
	} else {
		fmt.Fprintln(w, "   late retry, after processing finished: skipped")
	}
	fmt.Fprintln(w, "   note: a lock only dedups deliveries that overlap the processing. It is released")
	fmt.Fprintln(w, "   when fn returns, so a retry that comes later runs again. cache.Once (next) remembers")
	fmt.Fprintln(w, "   that the event was processed (docs/locks.md, \"What a lock does not protect against\").")
	return nil
}

// onceDemo: the same deliveries with cache.Once: the handler runs once, the concurrent
// deliveries wait for its result, and a retry after it finished gets the result without
// running it again, for as long as the TTL.
func onceDemo(ctx context.Context, w io.Writer, c *cache.Cache, rep *demoReport) error {
	const deliveries = 20
	const eventID = "evt_1Nq3"
	const want = "charge.succeeded recorded"
	key := "webhook.stripe." + eventID
	fmt.Fprintf(w, "3. Once per event: %d concurrent deliveries of event %s, then a late retry\n", deliveries, eventID)
	fmt.Fprintf(w, "   cache.Once(ctx, c, %q, 7*24*time.Hour, processStripeEvent)\n", key)

	var runs atomic.Int64
	process := func(ctx context.Context) (string, error) {
		runs.Add(1)
		select { // the handler takes a while: the other deliveries arrive meanwhile
		case <-time.After(10 * time.Millisecond):
		case <-ctx.Done():
			return "", ctx.Err()
		}
		return want, nil
	}
	outs := make([]cache.OnceOutcome[string], deliveries)
	errs := make([]error, deliveries)
	together(deliveries, func(i int) {
		outs[i], errs[i] = cache.Once(ctx, c, key, 7*24*time.Hour, process)
	})
	for i, out := range outs {
		if errs[i] != nil {
			return fmt.Errorf("once: delivery %d: %w", i+1, errs[i])
		}
		if out.Ran {
			rep.OnceRan++
			fmt.Fprintf(w, "   delivery %2d  200 processed: %s\n", i+1, out.Value)
		}
		if out.Value == want {
			rep.OnceSameValue++
		}
	}
	fmt.Fprintf(w, "   other %d deliveries  200 with the same result (waited for it, fn not run)\n", deliveries-rep.OnceRan)

	out, err := cache.Once(ctx, c, key, 7*24*time.Hour, process)
	if err != nil {
		return fmt.Errorf("once: late retry: %w", err)
	}
	rep.OnceRetrySkips = !out.Ran && out.Value == want
	rep.OnceRuns = runs.Load()
	if out.Ran {
		fmt.Fprintln(w, "   late retry, after processing finished: processed AGAIN")
	} else {
		fmt.Fprintf(w, "   late retry, after processing finished: skipped, result %q\n", out.Value)
	}
	fmt.Fprintf(w, "   => processed %d time(s) for %d deliveries; the result is kept for the TTL\n", rep.OnceRuns, deliveries+1)
	fmt.Fprintln(w, "   (docs/once.md; docs/locks.md, \"Webhooks: process each event once, with `cache.Once`\")")
	return nil
}

// reportDemo: a worker takes the daily report's lock with an owner label; a second worker
// reads the owner with Get while the lock is held, and skips.
func reportDemo(ctx context.Context, w io.Writer, c *cache.Cache, rep *demoReport) error {
	const date = "2026-03-01"
	key := "lock.daily-report." + date
	fmt.Fprintln(w, "4. Batch report with an owner label")
	fmt.Fprintf(w, "   cache.LockWith(ctx, c, %q, cache.LockOptions{TTL: time.Hour, Owner: \"worker.reports-1\"}, generate)\n", key)

	held := make(chan struct{})
	signalHeld := sync.OnceFunc(func() { close(held) })
	checked := make(chan struct{})
	var (
		out        cache.LockOutcome[string]
		err1, err2 error
	)
	var wg sync.WaitGroup
	wg.Go(func() { // worker 1
		defer signalHeld() // also when fn never ran, so that worker 2 does not wait forever
		out, err1 = cache.LockWith(ctx, c, key, cache.LockOptions{TTL: time.Hour, Owner: "worker.reports-1"},
			func(ctx context.Context) (string, error) {
				fmt.Fprintf(w, "   worker.reports-1  took %s, generating the report\n", key)
				signalHeld()
				<-checked // generateReport(date) and sendToOps(report) take a while
				return "rpt-" + date, nil
			})
	})
	wg.Go(func() { // worker 2
		defer close(checked)
		<-held
		var holder string
		found, err := c.Get(ctx, key, &holder)
		if err != nil {
			err2 = err
			return
		}
		owner, _, _ := strings.Cut(holder, "#")
		if found {
			rep.ReportOwnerSeen = owner
			fmt.Fprintf(w, "   worker.reports-2  c.Get(%q) = \"%s#…\": held by %s\n", key, owner, owner)
		}
		o2, err := cache.LockWith(ctx, c, key, cache.LockOptions{TTL: time.Hour, Owner: "worker.reports-2"},
			func(ctx context.Context) (string, error) { return "rpt-" + date, nil })
		if err != nil {
			err2 = err
			return
		}
		rep.ReportSkipped = !o2.Acquired
		if !o2.Acquired {
			fmt.Fprintf(w, "   worker.reports-2  skipped: report for %s is already being generated elsewhere\n", date)
		}
	})
	wg.Wait()
	if err1 != nil {
		return fmt.Errorf("report: worker.reports-1: %w", err1)
	}
	if err2 != nil {
		return fmt.Errorf("report: worker.reports-2: %w", err2)
	}
	if out.Acquired {
		fmt.Fprintf(w, "   worker.reports-1  generated report %s for %s\n", out.Value, date)
	}
	var holder string
	found, err := c.Get(ctx, key, &holder)
	if err != nil {
		return fmt.Errorf("report: %w", err)
	}
	rep.ReportReleased = !found
	if found {
		fmt.Fprintf(w, "   after return: the lock is still held by %q\n", holder)
	} else {
		fmt.Fprintf(w, "   after return: c.Get(%q) misses: the lock was released\n", key)
	}
	return nil
}

// rememberDemo: 100 goroutines miss the same cold key at once; the loader runs once and
// every caller gets its value.
func rememberDemo(ctx context.Context, w io.Writer, c *cache.Cache, rep *demoReport) error {
	const callers = 100
	const want = "totals: 1234 orders"
	fmt.Fprintf(w, "5. Remember stampede: %d goroutines ask for report.totals on a cold cache\n", callers)
	fmt.Fprintln(w, `   cache.Remember(ctx, c, "report.totals", time.Minute, loadTotals)`)

	var runs atomic.Int64
	load := func(ctx context.Context) (string, error) {
		runs.Add(1)
		select { // a slow query, so that the callers pile up behind it
		case <-time.After(20 * time.Millisecond):
		case <-ctx.Done():
			return "", ctx.Err()
		}
		return want, nil
	}
	vals := make([]string, callers)
	errs := make([]error, callers)
	together(callers, func(i int) {
		vals[i], errs[i] = cache.Remember(ctx, c, "report.totals", time.Minute, load)
	})
	rep.RememberCallers = callers
	for i, v := range vals {
		if errs[i] != nil {
			return fmt.Errorf("remember: caller %d: %w", i+1, errs[i])
		}
		if v == want {
			rep.RememberSameValue++
		}
	}
	rep.LoaderRuns = runs.Load()
	fmt.Fprintf(w, "   => loader ran %d time(s); %d of %d callers got %q\n", rep.LoaderRuns, rep.RememberSameValue, callers, want)
	if _, err := cache.Remember(ctx, c, "report.totals", time.Minute, load); err != nil {
		return fmt.Errorf("remember: %w", err)
	}
	fmt.Fprintf(w, "   a later call is a hit: the loader has still run %d time(s)\n", runs.Load())
	return nil
}
