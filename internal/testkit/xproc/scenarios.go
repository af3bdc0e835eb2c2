package xproc

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cachekit/cache"
)

// Target is a driver as the shared scenarios see it.
type Target struct {
	// Fresh returns a store of its own for one scenario (named for a key prefix, where
	// the driver uses one), emptied at the end of the test where that matters.
	Fresh func(t *testing.T, name string) Store
	// Open returns a cache of this process (the parent) on s, closed at the end of the
	// test.
	Open func(t *testing.T, s Store) *cache.Cache
}

// Prefixed is the server at addr (a Redis, a PostgreSQL database) as the shared
// scenarios see it: a fresh key prefix, scope(name), for each scenario, and the parent's
// caches from open, which must empty the prefix at the end of the test.
func Prefixed(addr string, scope func(name string) string, open func(t *testing.T, addr, prefix string) *cache.Cache) Target {
	return Target{
		Fresh: func(t *testing.T, name string) Store {
			prefix := scope(name)
			open(t, addr, prefix) // empties the prefix at the end
			return Store{Addr: addr, Prefix: prefix}
		},
		Open: func(t *testing.T, s Store) *cache.Cache { return open(t, s.Addr, s.Prefix) },
	}
}

// mutexProcs and mutexPer: the mutual exclusion proof runs 4 processes × 100 attempts.
const mutexProcs, mutexPer = 4, 100

// runMutex starts mutexProcs processes in mode ("mutex" or "mutex-naive") on a fresh
// store, each making mutexPer attempts, gives them "go" together once all are ready
// (connected), and returns their results.
func runMutex(t *testing.T, tg Target, mode string) []mutexResult {
	t.Helper()
	ps := StartN(t, mutexProcs, Job{Mode: mode, Store: tg.Fresh(t, "xmutex"), N: mutexPer})
	Go(ps)
	results := make([]mutexResult, len(ps))
	for i, p := range ps {
		p.Result(&results[i])
	}
	return results
}

// MutualExclusion: 4 OS processes, each with its own driver, make 100 cache.Lock
// attempts each on one key; inside fn an overlap detector (Increment a marker, check it
// is 1, Decrement) never sees two holders. Every attempt acquires or is skipped, without
// error, and both happen: the processes contended.
func MutualExclusion(t *testing.T, tg Target) {
	t.Helper()
	start := time.Now()
	var acquired, skipped, overlaps, errs int
	for _, r := range runMutex(t, tg, "mutex") {
		t.Logf("process %d (pid %d): acquired %d, skipped %d, overlaps %d, errors %d %s",
			r.ID, r.PID, r.Acquired, r.Skipped, r.Overlaps, r.Errors, r.FirstErr)
		acquired += r.Acquired
		skipped += r.Skipped
		overlaps += r.Overlaps
		errs += r.Errors
	}
	t.Logf("total over %d processes x %d attempts in %v: acquired %d, skipped %d, overlaps %d, errors %d",
		mutexProcs, mutexPer, time.Since(start).Round(time.Millisecond), acquired, skipped, overlaps, errs)
	switch {
	case overlaps != 0:
		t.Fatalf("%d overlaps: two processes held the lock at once", overlaps)
	case errs != 0:
		t.Fatalf("%d lock attempts failed", errs)
	case acquired+skipped != mutexProcs*mutexPer:
		t.Fatalf("acquired %d + skipped %d != %d attempts", acquired, skipped, mutexProcs*mutexPer)
	case acquired == 0 || skipped == 0:
		t.Fatalf("acquired %d, skipped %d: the processes did not contend", acquired, skipped)
	}
}

// MutualExclusionNegative: the same processes with a get-then-set lock (Has, then Set)
// must show overlaps within 3 rounds: the detector detects.
func MutualExclusionNegative(t *testing.T, tg Target) {
	t.Helper()
	var overlaps, acquired int
	for round := 0; round < 3 && overlaps == 0; round++ {
		for _, r := range runMutex(t, tg, "mutex-naive") {
			overlaps += r.Overlaps
			acquired += r.Acquired
		}
	}
	t.Logf("get-then-set lock: acquired %d, overlaps %d", acquired, overlaps)
	if overlaps == 0 {
		t.Fatal("the get-then-set lock showed no overlap in 3 rounds: the overlap detector does not detect, and the proof proves nothing")
	}
}

// Fencing: 4 OS processes × 250 fenced acquisitions of one key, each waiting for the lock
// (Wait), 1000 in all. Every token is unique, and inside fn every token is strictly above
// the highest any holder saw before it (a record in the store that only fn reads and
// writes): zero violations.
func Fencing(t *testing.T, tg Target) {
	t.Helper()
	const procs, per = 4, 250
	ps := StartN(t, procs, Job{Mode: "fence", Store: tg.Fresh(t, "xfence"), N: per})
	start := time.Now()
	Go(ps)
	var all []int64
	var viol int
	for i, p := range ps {
		r := p.Next("result")
		p.Exit()
		increasing := true
		for j := 1; j < len(r.Tokens); j++ {
			increasing = increasing && r.Tokens[j] > r.Tokens[j-1]
		}
		t.Logf("process %d (pid %d): %d acquisitions, tokens %d … %d, increasing %v, %d violations of the highest-seen record",
			i, p.Pid(), len(r.Tokens), r.Tokens[0], r.Tokens[len(r.Tokens)-1], increasing, r.Viol)
		if len(r.Tokens) != per || !increasing {
			t.Errorf("process %d: %d tokens, increasing %v; want %d increasing tokens", i, len(r.Tokens), increasing, per)
		}
		viol += r.Viol
		all = append(all, r.Tokens...)
	}
	elapsed := time.Since(start)
	slices.Sort(all)
	unique := len(slices.Compact(slices.Clone(all)))
	t.Logf("%d processes × %d fenced acquisitions (waiting) in %v: %d tokens, %d unique, from %d to %d; %d violations (token not above the highest seen)",
		procs, per, elapsed.Round(time.Millisecond), len(all), unique, all[0], all[len(all)-1], viol)
	if unique != procs*per {
		t.Fatalf("%d unique tokens of %d: a token was handed out twice", unique, len(all))
	}
	if viol != 0 {
		t.Fatalf("%d holders got a token not above the highest already seen", viol)
	}
}

// autoExtendTTL is the lock's TTL in the AutoExtend scenarios. A renewal runs every
// TTL/3 and gets TTL/3 to be answered: a second on a busy machine with -race, where a
// store's write (a PostgreSQL UPDATE, an fsynced file) can take a hundred milliseconds
// and more, is room enough; a lease of a few hundred milliseconds is not.
const autoExtendTTL = time.Second

// autoExtendHolds is how many TTLs the holder's fn runs.
const autoExtendHolds = 3

// aeRun is what autoExtendRun saw: the holder's result (T, T2: fn's start and end; T3:
// its lease's end as it knew it then), the contenders' acquisitions while the holder's
// lease was valid (inLease) and while its fn ran (inFn), and their attempts while its
// fn ran.
type aeRun struct {
	held          Msg
	inLease, inFn int
	tries         int
}

// autoExtendRun runs one holder of "lx.ae" (TTL ttl, fn autoExtendHolds×ttl, with or
// without AutoExtend) against 3 processes that try to take it every ttl/4.
func autoExtendRun(t *testing.T, tg Target, ttl time.Duration, autoExtend bool) aeRun {
	t.Helper()
	s := tg.Fresh(t, "xae")
	holder := Start(t, Job{Mode: "hold", Store: s, TTL: ttl, Hold: autoExtendHolds * ttl, AutoExtend: autoExtend})
	others := StartN(t, 3, Job{Mode: "contend", Store: s, TTL: ttl})
	holder.Next("ready")
	holder.Send("go")
	holder.Next("held")
	Go(others)
	r := aeRun{held: holder.Next("result")}
	holder.Exit()
	for _, p := range others {
		p.Send("stop")
	}
	from, to, until := r.held.T, r.held.T2, min(r.held.T2, r.held.T3)
	count := func(ts []int64, end int64) (n int) {
		for _, at := range ts {
			if at >= from && at <= end {
				n++
			}
		}
		return n
	}
	for i, p := range others {
		c := p.Next("result")
		p.Exit()
		in, tr := count(c.Times, to), count(c.Attempts, to)
		t.Logf("contender %d (pid %d): %d attempts while the holder's fn ran, %d of them acquired (%d attempts, %d acquisitions in all)",
			i, p.Pid(), tr, in, len(c.Attempts), len(c.Times))
		r.inFn += in
		r.inLease += count(c.Times, until)
		r.tries += tr
	}
	t.Logf("AutoExtend %v, TTL %v: the holder's fn ran %v, its lease ended %v after fn started; Lock's error: %v; fn's ctx cause: %v; the 3 contenders made %d attempts while fn ran and acquired %d times (%d while the lease was valid)",
		autoExtend, ttl, Time(to).Sub(Time(from)).Round(time.Millisecond), Time(r.held.T3).Sub(Time(from)).Round(time.Millisecond),
		r.held.Err, r.held.Cause, r.tries, r.inFn, r.inLease)
	return r
}

// AutoExtend: a holder whose fn runs 3 TTLs under AutoExtend is never overlapped by 3
// other processes that try to take the lock every TTL/4 (and did try) while its lease
// is valid, and its renewals move the lease. The instants compared are the holder's
// lease end as it knew it (HeldLock's ValidUntil, moved only by confirmed renewals) and
// the others' acquisitions: no scheduler can break the order. A renewal that a busy
// machine delays past its interval ends the lease early, and the holder is told
// (ErrLockLost): that is correct, and checked; a run in which not even the first renewal
// was confirmed proves nothing about renewals, and runs again, up to 3 times.
func AutoExtend(t *testing.T, tg Target) {
	t.Helper()
	const ttl = autoExtendTTL
	var r aeRun
	for run := 1; ; run++ {
		r = autoExtendRun(t, tg, ttl, true)
		renewed := Time(r.held.T3).After(Time(r.held.T).Add(ttl))
		if renewed || run == 3 {
			if !renewed {
				t.Fatalf("in 3 runs no renewal was confirmed: the lease never moved past its first TTL")
			}
			break
		}
		t.Logf("run %d: no renewal confirmed (a busy machine?); again", run)
	}
	if r.inLease != 0 {
		t.Fatalf("other processes acquired the lock %d times while the holder's lease was valid under AutoExtend", r.inLease)
	}
	if r.tries < 3 {
		t.Fatalf("the contenders made only %d attempts while the holder ran: they did not contend", r.tries)
	}
	if r.held.Err == "" && r.held.Cause == "" {
		if r.inFn != 0 || r.held.T3 < r.held.T2 {
			t.Fatalf("no loss reported, yet the lease ended before fn did, or others got in while fn ran (%d times)", r.inFn)
		}
		if ran := Time(r.held.T2).Sub(Time(r.held.T)); ran < autoExtendHolds*ttl {
			t.Fatalf("the holder's fn ran %v; want at least %d TTLs (%v)", ran, autoExtendHolds, autoExtendHolds*ttl)
		}
		return
	}
	if !r.held.Lost || !r.held.CauseLost {
		t.Fatalf("under AutoExtend, Lock's error = %q and fn's ctx cause = %q; want none, or both ErrLockLost (a renewal failed)", r.held.Err, r.held.Cause)
	}
	t.Logf("a renewal failed (a busy machine?) and the holder was told: %s", r.held.Cause)
}

// AutoExtendNegative is AutoExtend's negative control: the same without AutoExtend, and
// the others get in, so AutoExtend would fail without the renewal.
func AutoExtendNegative(t *testing.T, tg Target) {
	t.Helper()
	r := autoExtendRun(t, tg, autoExtendTTL, false)
	held := r.held
	if r.inFn == 0 {
		t.Fatal("without AutoExtend nobody got in while the holder's fn outlived its TTL: the test above proves nothing")
	}
	if !held.Lost || !held.CauseLost {
		t.Fatalf("without AutoExtend, Lock's error %q, fn's ctx cause %q; want both ErrLockLost", held.Err, held.Cause)
	}
	if Time(held.T3).After(Time(held.T).Add(autoExtendTTL)) {
		t.Fatalf("without AutoExtend the lease moved past its TTL (to %v after fn started)", Time(held.T3).Sub(Time(held.T)))
	}
}

// LostHold is how long a "lost" holder waits for fn's ctx to end before it gives up:
// a hang detector, for a loss that is seen within one renewal interval (milliseconds).
const LostHold = time.Minute

// LostCheck checks one lost-lock round of a "lost" holder: fn's ctx ended with cause
// ErrLockLost, Lock's error matches ErrLockLost, and the ctx ended after the lock was
// taken away (killed: an instant taken before that), measured on one clock, so that
// the renewals kept it alive until then. How soon it ended is logged and returned, not
// asserted: BenchmarkLockLost measures it.
func LostCheck(t *testing.T, what string, ttl time.Duration, killed time.Time, r Msg) time.Duration {
	t.Helper()
	took := Time(r.T).Sub(killed)
	t.Logf("%s: fn's ctx ended %v after it (renewal interval %v); cause: %v; Lock's error: %v",
		what, took.Round(100*time.Microsecond), ttl/3, r.Cause, r.Err)
	if !r.CauseLost || !r.Lost {
		t.Errorf("%s: fn's ctx cause %q (ErrLockLost: %v), Lock's error %q (ErrLockLost: %v); want both ErrLockLost", what, r.Cause, r.CauseLost, r.Err, r.Lost)
	}
	if took < 0 {
		t.Errorf("%s: fn's ctx ended %v before it: the lock was lost although it was still held", what, -took)
	}
	return took
}

// LostForceRelease: while a holder process runs fn under AutoExtend, another process
// (this one) deletes the lock with cache.ForceRelease; the holder's fn ctx is cancelled
// with cause ErrLockLost after the ForceRelease (not before: its renewals kept it), and
// its Lock's error matches ErrLockLost. The holder waits for that up to LostHold, a hang
// detector. Five rounds, the delete at a random point of the renewal period.
//
// A round in which a busy machine starved the holder's renewals is inconclusive, and
// runs again (up to maxStarved times): the lock had expired before the ForceRelease, or
// a renewal got no answer in time and the holder, unable to prove it still held the
// lock, gave it up first. Both are the lease doing its job; neither says anything about
// a ForceRelease.
func LostForceRelease(t *testing.T, tg Target) {
	t.Helper()
	const ttl, rounds, maxStarved = 300 * time.Millisecond, 5, 20
	ctx := context.Background()
	s := tg.Fresh(t, "xlost")
	c := tg.Open(t, s)
	holder := Start(t, Job{Mode: "lost", Store: s, N: rounds + maxStarved, TTL: ttl, Hold: LostHold})
	holder.Next("ready")
	var took []time.Duration
	starved := 0
	for i := 0; i < rounds; i++ {
		holder.Send("go")
		holder.Next("held")
		// Past a renewal or two, at a random phase of the renewal period.
		time.Sleep(ttl/3 + rand.N(ttl/3))
		info, err := cache.InspectLock(ctx, c, "lx.lost")
		if err != nil {
			t.Fatal(err)
		}
		killed := time.Now()
		if err := cache.ForceRelease(ctx, c, "lx.lost"); err != nil {
			t.Fatal(err)
		}
		r := holder.Next("result")
		if lost := Time(r.T).Sub(killed); !info.Held || lost < 0 && strings.Contains(r.Cause, "renewal failed") {
			starved++
			t.Logf("round %d: inconclusive, the holder's renewals were starved (held at the ForceRelease: %v; cause: %s)", i, info.Held, r.Cause)
			if starved > maxStarved {
				t.Fatalf("%d rounds inconclusive: the machine starved the holder every time", starved)
			}
			i--
			continue
		}
		took = append(took, LostCheck(t, fmt.Sprintf("round %d, ForceRelease from pid %d", i, os.Getpid()), ttl, killed, r))
	}
	holder.Send("stop")
	holder.Exit()
	median, p90, worst := Stats(took)
	t.Logf("ForceRelease → fn's ctx cancelled, %d rounds (%d inconclusive): median %v, p90 %v, max %v (renewal interval %v; logged only)", rounds, starved, median, p90, worst, ttl/3)
}

// remember runs 4 processes × 50 goroutines of RememberWith on one cold key and returns
// the loads counted in the store, the values the callers got, and how many processes
// loaded.
func remember(t *testing.T, tg Target, distributed bool) (loads int64, vals map[string]int, loaders int) {
	t.Helper()
	const procs, goroutines = 4, 50
	s := tg.Fresh(t, "xremember")
	c := tg.Open(t, s)
	ps := StartN(t, procs, Job{Mode: "remember", Store: s, G: goroutines, Distributed: distributed})
	start := time.Now()
	Go(ps)
	vals = map[string]int{}
	var calls int
	for i, p := range ps {
		r := p.Next("result")
		p.Exit()
		t.Logf("process %d (pid %d): the loader ran %d times; values: %v", i, p.Pid(), r.N, r.Vals)
		if r.N > 0 {
			loaders++
		}
		for v, n := range r.Vals {
			vals[v] += n
			calls += n
		}
	}
	if _, err := c.Get(context.Background(), "lx.loads", &loads); err != nil {
		t.Fatal(err)
	}
	t.Logf("Distributed %v: %d processes × %d goroutines (%d calls) in %v: the loader ran %d times in all, in %d processes; %d distinct values",
		distributed, procs, goroutines, calls, time.Since(start).Round(time.Millisecond), loads, loaders, len(vals))
	if calls != procs*goroutines {
		t.Fatalf("%d calls returned a value; want %d", calls, procs*goroutines)
	}
	return loads, vals, loaders
}

// RememberDistributed: 4 processes × 50 goroutines call RememberWith with Distributed on
// one cold key: the loader (100 ms, counted with cache.Increment on another key) runs
// once in all, and every caller gets its value.
func RememberDistributed(t *testing.T, tg Target) {
	t.Helper()
	loads, vals, _ := remember(t, tg, true)
	if loads != 1 || len(vals) != 1 {
		t.Fatalf("the loader ran %d times, the callers got %d distinct values; want 1 and 1", loads, len(vals))
	}
}

// RememberNegative is RememberDistributed's negative control: without Distributed, the
// loader runs in more than one process.
func RememberNegative(t *testing.T, tg Target) {
	t.Helper()
	loads, _, loaders := remember(t, tg, false)
	if loads <= 1 || loaders <= 1 {
		t.Fatalf("without Distributed the loader ran %d times in %d processes; want more than one: the test above proves nothing", loads, loaders)
	}
}

// handoffResult is what handoff saw: the latencies from the holder's fn returning (its
// release follows) to the waiter's fn running, sorted (logged, never asserted: the
// figure is BenchmarkLockHandoff's), and how many winning attempts each wake-up source
// ran, by wait.Why's name.
type handoffResult struct {
	latencies   []time.Duration
	woken       map[string]int
	watchFailed int // handoffs in which a Watch failed (a turn then polls)
	unexplained int // handoffs not won by the notification although no Watch failed
}

// handoff runs rounds handoffs of "lx.ho" from a holder process to a waiter process. The
// holder releases once the waiter's first attempt has failed, so that the waiter is
// waiting when the release comes.
func handoff(t *testing.T, tg Target, rounds int, deaf bool) handoffResult {
	t.Helper()
	s := tg.Fresh(t, "xhandoff")
	holder := Start(t, Job{Mode: "handoff-holder", Store: s, N: rounds})
	waiter := Start(t, Job{Mode: "handoff-waiter", Store: s, N: rounds, DeafWatch: deaf})
	holder.Next("ready")
	waiter.Next("ready")
	res := handoffResult{woken: map[string]int{}}
	for range rounds {
		holder.Send("hold")
		holder.Next("held")
		waiter.Send("wait")
		waiter.Next("waiting") // its first attempt failed: it waits
		holder.Send("release")
		rel := holder.Next("rel")
		acq := waiter.Next("acq")
		res.latencies = append(res.latencies, Time(acq.T).Sub(Time(rel.T)))
		res.woken[acq.Woken]++
		switch {
		case acq.N > 0:
			res.watchFailed++
		case acq.Woken != "watched":
			res.unexplained++
		}
	}
	holder.Exit()
	waiter.Exit()
	median, p90, worst := Stats(res.latencies)
	t.Logf("cross-process handoff (waiter deaf to releases: %v) over %d rounds: winning attempts by source %v, %d rounds with a failed Watch; holder's fn returned → waiter's fn running: median %v, p90 %v, max %v (logged only: BenchmarkLockHandoff measures it)",
		deaf, rounds, res.woken, res.watchFailed, median, p90, worst)
	return res
}

// WaitHandoff: a holder process releases and a waiter process (LockOptions.Wait)
// acquires, 50 times, and the release's notification (the driver's Watch) is what wakes
// the waiter: its poll is stretched to an hour (wait.Probe), so a poll could win only
// when its one-minute Wait ends. A round whose Watch failed polls with its backoff and
// is not counted against the driver (a Watch is a hint); at least one round must be
// woken by the notification. How fast the handoff is, BenchmarkLockHandoff measures.
func WaitHandoff(t *testing.T, tg Target) {
	t.Helper()
	const rounds = 50
	r := handoff(t, tg, rounds, false)
	if r.unexplained > 0 || r.woken["watched"] == 0 {
		t.Fatalf("winning attempts by source %v, %d rounds with a failed Watch, over %d rounds; want every round woken by the release (watched), but for rounds whose Watch failed",
			r.woken, r.watchFailed, rounds)
	}
}

// WaitHandoffNegative is WaitHandoff's negative control: the waiter's driver has a Watch
// that never hears a release (Job.DeafWatch), and its poll keeps its backoff: every
// handoff is then won by the poll, so WaitHandoff would fail without the notification.
func WaitHandoffNegative(t *testing.T, tg Target) {
	t.Helper()
	const rounds = 20
	if r := handoff(t, tg, rounds, true); r.woken["polled"] != rounds {
		t.Fatalf("without the release notification, winning attempts by source %v over %d rounds; want all polled: the test above proves nothing", r.woken, rounds)
	}
}

// Once: 4 processes × 25 goroutines call cache.Once on one key: fn (100 ms, counted with
// cache.Increment on another key) runs once in all, and every caller gets its value.
func Once(t *testing.T, tg Target) {
	t.Helper()
	const procs, goroutines = 4, 25
	s := tg.Fresh(t, "xonce")
	c := tg.Open(t, s)
	ps := StartN(t, procs, Job{Mode: "once", Store: s, G: goroutines})
	start := time.Now()
	Go(ps)
	vals := map[string]int{}
	var ran, calls int
	for i, p := range ps {
		r := p.Next("result")
		p.Exit()
		t.Logf("process %d (pid %d): fn ran %d times, %d callers saw Ran; values: %v", i, p.Pid(), r.N, r.Ran, r.Vals)
		ran += r.Ran
		for v, n := range r.Vals {
			vals[v] += n
			calls += n
		}
	}
	var runs int64
	if _, err := c.Get(context.Background(), "lx.loads", &runs); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d processes × %d goroutines (%d calls) of Once in %v: fn ran %d times in all, %d callers saw Ran, %d distinct values",
		procs, goroutines, calls, time.Since(start).Round(time.Millisecond), runs, ran, len(vals))
	if calls != procs*goroutines || runs != 1 || ran != 1 || len(vals) != 1 {
		t.Fatalf("%d calls returned, fn ran %d times, %d callers saw Ran, %d distinct values; want %d, 1, 1, 1",
			calls, runs, ran, len(vals), procs*goroutines)
	}
}

// modProcs and modPer: the modify scenarios run 4 processes × 250 operations.
const modProcs, modPer = 4, 250

// runMod starts modProcs processes in mode ("modify", "modify-naive" or "push") on s,
// each doing count operations, gives them "go" together once all are ready, and returns
// their results.
func runMod(t *testing.T, mode string, s Store, count, maxAttempts int) []ModResult {
	t.Helper()
	ps := StartN(t, modProcs, Job{Mode: mode, Store: s, N: count, MaxAttempts: maxAttempts})
	Go(ps)
	results := make([]ModResult, len(ps))
	for i, p := range ps {
		p.Result(&results[i])
	}
	return results
}

// readTally reads the final tally on s with a cache of its own.
func readTally(t *testing.T, tg Target, s Store) Tally {
	t.Helper()
	var got Tally
	if found, err := tg.Open(t, s).Get(context.Background(), "tally", &got); !found || err != nil {
		t.Fatalf("Get(tally) = %v, %v", found, err)
	}
	return got
}

// Modify: 4 OS processes, each with its own driver, run 250 cache.Modify increments each
// on one key holding a struct counter. Two subtests:
//
//   - "exact": with MaxAttempts 1000, every call succeeds and the total is exactly 1000,
//     each process's own count exactly 250. The CAS retries (fn runs beyond one per
//     call) show that the processes contended.
//   - "default": plain cache.Modify, whose 10 attempts can run out under this
//     contention: a call that runs out returns ErrConflict and must have changed
//     nothing, so the total is exactly the number of calls that succeeded.
func Modify(t *testing.T, tg Target) {
	t.Helper()
	for _, v := range []struct {
		name        string
		maxAttempts int
	}{{"exact", 1000}, {"default", 0}} {
		t.Run(v.name, func(t *testing.T) {
			s := tg.Fresh(t, "xmodify")
			start := time.Now()
			res := runMod(t, "modify", s, modPer, v.maxAttempts)
			elapsed := time.Since(start)
			var done, calls, maxCalls, errs, conflicts int
			for _, r := range res {
				t.Logf("process %d (pid %d): %d Modify calls done, fn ran %d times (%d CAS retries, at most %d runs for one call), %d errors (%d ErrConflict) %s",
					r.ID, r.PID, r.Done, r.Calls, r.Calls-modPer, r.MaxCalls, r.Errors, r.Conflict, r.FirstErr)
				done += r.Done
				calls += r.Calls
				maxCalls = max(maxCalls, r.MaxCalls)
				errs += r.Errors
				conflicts += r.Conflict
			}
			got := readTally(t, tg, s)
			t.Logf("%d processes × %d Modify (MaxAttempts %d) in %v: total %d, successful calls %d, per process %v; %d CAS retries in all, at most %d fn runs for one Modify; %d calls ended in ErrConflict",
				modProcs, modPer, v.maxAttempts, elapsed.Round(time.Millisecond), got.N, done, got.By, calls-modProcs*modPer, maxCalls, conflicts)
			if errs != conflicts {
				t.Fatalf("%d Modify calls failed with an error other than ErrConflict", errs-conflicts)
			}
			if got.N != done {
				t.Fatalf("total = %d after %d successful Modify increments: updates were lost or doubled", got.N, done)
			}
			for _, r := range res {
				if n := got.By[strconv.Itoa(r.ID)]; n != r.Done {
					t.Fatalf("process %d's count = %d; it made %d successful Modify calls", r.ID, n, r.Done)
				}
			}
			if calls == modProcs*modPer {
				t.Logf("note: no CAS retry at all: the processes did not contend this time")
			}
			if v.maxAttempts != 0 && got.N != modProcs*modPer {
				t.Fatalf("total = %d; want exactly %d", got.N, modProcs*modPer)
			}
		})
	}
}

// ModifyNegativeControl: the same processes with a plain Get-then-Set lose updates, so
// Modify's total would not be exact without its atomicity. Up to 3 rounds, until one
// loses an update.
func ModifyNegativeControl(t *testing.T, tg Target) {
	t.Helper()
	var total, lost int
	for round := 0; round < 3 && lost == 0; round++ {
		s := tg.Fresh(t, "xnaive")
		for _, r := range runMod(t, "modify-naive", s, modPer, 0) {
			if r.Errors != 0 {
				t.Fatalf("process %d: %d errors: %s", r.ID, r.Errors, r.FirstErr)
			}
		}
		got := readTally(t, tg, s)
		total, lost = got.N, modProcs*modPer-got.N
		t.Logf("round %d: %d processes × %d Get-then-Set increments: total %d, %d updates lost; per process %v",
			round, modProcs, modPer, got.N, lost, got.By)
	}
	if lost == 0 {
		t.Fatalf("Get-then-Set lost no update (total %d): the processes did not race, and the Modify test proves nothing", total)
	}
}

// ListPush: 4 OS processes × 100 List.Push on one key: the list holds exactly 400 items,
// each process's items once and in its order. It returns the store, for the driver's
// own checks of how the list is stored.
func ListPush(t *testing.T, tg Target) Store {
	t.Helper()
	const per = 100
	ctx := context.Background()
	s := tg.Fresh(t, "xpush")
	start := time.Now()
	res := runMod(t, "push", s, per, 0)
	elapsed := time.Since(start)
	for _, r := range res {
		if r.Errors != 0 || r.Done != per {
			t.Fatalf("process %d: %d pushes done, %d errors (%d ErrConflict): %s", r.ID, r.Done, r.Errors, r.Conflict, r.FirstErr)
		}
	}
	l := cache.NewList[Item](tg.Open(t, s), "list", time.Minute)
	n, err := l.Len(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d processes × %d List.Push in %v: length %d (want %d)", modProcs, per, elapsed.Round(time.Millisecond), n, modProcs*per)
	if n != modProcs*per {
		t.Fatalf("length = %d; want exactly %d", n, modProcs*per)
	}
	all, err := l.Slice(ctx, 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	checkPushed(t, all, modProcs, per)
	return s
}

// checkPushed: every process's items 0 … per-1 appear once, in order.
func checkPushed(t *testing.T, all []Item, procs, per int) {
	t.Helper()
	next := make([]int, procs)
	interleaved := false
	for k, it := range all {
		if it.P < 0 || it.P >= procs || it.I != next[it.P] {
			t.Fatalf("item %d is %+v; process %d's next item should be %d", k, it, it.P, next[max(0, min(it.P, procs-1))])
		}
		next[it.P]++
		interleaved = interleaved || (k > 0 && all[k-1].P != it.P)
	}
	for p, n := range next {
		if n != per {
			t.Fatalf("process %d has %d items; want %d", p, n, per)
		}
	}
	if !interleaved {
		t.Logf("note: the processes' pushes did not interleave this time")
	}
}
