package filecache_test

// Cross-process tests: real OS processes sharing one directory, through internal/testkit/xproc,
// which runs the test binary again as child processes (TestMain hands them to
// child.Main). Every claim that the driver is atomic across processes is checked here;
// the proofs that the file and Redis drivers share (lockx_process_test.go,
// modify_process_test.go) are xproc's scenarios.

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cachekit/cache"
	"github.com/cachekit/cache/driver"
	"github.com/cachekit/cache/drivers/filecache"
	"github.com/cachekit/cache/internal/testkit/xproc"
	"github.com/cachekit/cache/internal/wait"
)

const procs = 4 // processes in the tests that run several

// child is the file driver's side of the child processes: a driver on the job's
// directory that fails the process on anything it reports to OnError, and the jobs of
// the file-only tests below.
var child = xproc.Child{
	Open: func(job xproc.Job) (*cache.Cache, func() error, error) {
		var reported atomic.Int64
		d, err := filecache.New(filecache.Options{Dir: job.Addr, OnError: func(err error) {
			reported.Add(1)
			fmt.Fprintln(os.Stderr, "OnError:", err)
		}})
		if err != nil {
			return nil, nil, err
		}
		var drv cache.Driver = d
		switch {
		case job.DeafWatch:
			drv = lxDeafWatch{d}
		case job.Mode == "lock-racy":
			drv = racyDriver{d}
		}
		c, err := cache.New(cache.Config{Drivers: map[string]cache.Driver{"file": drv}, Prefix: job.Prefix})
		if err != nil {
			_ = d.Close()
			return nil, nil, err
		}
		check := func() error {
			if n := reported.Load(); n != 0 {
				return fmt.Errorf("%d problems reported to OnError", n)
			}
			return nil
		}
		return c, check, nil
	},
	Modes: map[string]xproc.Mode{
		"lock":      xproc.OnGo(helperLock),
		"lock-racy": xproc.OnGo(helperLock), // Open gives it racyDriver
		"incr": xproc.OnGo(func(ctx context.Context, w *xproc.Worker) ([]int64, error) {
			return helperIncr(ctx, w.C, w.Job.N)
		}),
		"pull": xproc.OnGo(func(ctx context.Context, w *xproc.Worker) ([]int, error) {
			return helperPull(ctx, w.C, w.Job.N)
		}),
		"handoff":           helperHandoff,
		"hold-until-killed": helperHold,
		"write":             helperWrite,
	},
}

// lxDeafWatch is the driver whose Watch never reports a release, as if inotify (or the
// stat poller) missed the release (xproc.DeafWatch). The handoff's negative control.
type lxDeafWatch struct{ *filecache.Driver }

func (lxDeafWatch) Watch(ctx context.Context, _ string) (<-chan struct{}, error) {
	return xproc.DeafWatch(ctx)
}

// files is the file driver as the shared scenarios see it: a fresh directory for each
// scenario.
var files = xproc.Target{
	Fresh: func(t *testing.T, _ string) xproc.Store { return xproc.Store{Addr: t.TempDir()} },
	Open: func(t *testing.T, s xproc.Store) *cache.Cache {
		c, _ := newCacheOn(t, s.Addr)
		return c
	},
}

// lockResult is what one process saw of its lock attempts.
type lockResult struct {
	Ran, Skipped, Overlaps int
}

// helperLock makes the job's N attempts at the lock "hot". Inside fn it creates the
// marker file inside in the job's Aux directory with O_EXCL and removes it on the way
// out: if the marker already exists, another holder is inside fn at the same time, in
// this process or another.
func helperLock(ctx context.Context, w *xproc.Worker) (lockResult, error) {
	c := w.C
	var r lockResult
	marker := filepath.Join(w.Job.Aux, "inside")
	for range w.Job.N {
		out, err := cache.Lock(ctx, c, "hot", 10*time.Second, func(context.Context) (struct{}, error) {
			f, err := os.OpenFile(marker, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
			if errors.Is(err, fs.ErrExist) {
				r.Overlaps++
				time.Sleep(300 * time.Microsecond)
				return struct{}{}, nil
			}
			if err != nil {
				return struct{}{}, err
			}
			_ = f.Close()
			time.Sleep(300 * time.Microsecond)
			return struct{}{}, os.Remove(marker)
		})
		if errors.Is(err, cache.ErrLockLost) {
			// The release found another holder's lock: two held it at once. Only the
			// racy control may see this; the real test fails on any overlap.
			r.Overlaps++
			r.Ran++
			continue
		}
		if err != nil {
			return r, err
		}
		if out.Acquired {
			r.Ran++
		} else {
			r.Skipped++
		}
		time.Sleep(time.Duration(rand.IntN(200)) * time.Microsecond)
	}
	return r, nil
}

// racyDriver is the file driver with Create done as a read, then a write: the
// non-atomic emulation the driver never does. It shows that the overlap detector of
// helperLock sees overlaps when there are some.
type racyDriver struct{ *filecache.Driver }

func (r racyDriver) SetIf(ctx context.Context, e driver.Entry, cond driver.Condition) (bool, error) {
	_, found, err := r.Get(ctx, e.Key)
	if err != nil || found {
		return false, err
	}
	time.Sleep(200 * time.Microsecond)
	return true, r.Set(ctx, e)
}

// helperIncr increments "counter" n times and returns every value it got back.
func helperIncr(ctx context.Context, c *cache.Cache, n int) ([]int64, error) {
	got := make([]int64, 0, n)
	for range n {
		v, err := c.Increment(ctx, "counter", 1)
		if err != nil {
			return nil, err
		}
		got = append(got, v)
	}
	return got, nil
}

// helperPull pulls job.0 … job.<n-1>, starting at a random index, and returns the
// indexes it got.
func helperPull(ctx context.Context, c *cache.Cache, n int) ([]int, error) {
	var got []int
	start := rand.IntN(n)
	for j := range n {
		i := (start + j) % n
		var s string
		found, err := c.Pull(ctx, fmt.Sprintf("job.%d", i), &s)
		if err != nil {
			return nil, err
		}
		if found {
			if s != fmt.Sprintf("payload %d", i) {
				return nil, fmt.Errorf("job.%d holds %q", i, s)
			}
			got = append(got, i)
		}
	}
	return got, nil
}

// helperHandoff takes the lock "ho" N times, each time on the order "go"; it says
// "held", holds it for 50 ms and says when fn returned ("rel", T; the release follows).
func helperHandoff(ctx context.Context, w *xproc.Worker) error {
	for i := range w.Job.N {
		if err := w.Expect("go"); err != nil {
			return err
		}
		var returned time.Time
		res, err := cache.Lock(ctx, w.C, "ho", 10*time.Second, func(context.Context) (struct{}, error) {
			w.Send(xproc.Msg{K: "held"})
			if err := w.Expect("release"); err != nil {
				return struct{}{}, err
			}
			returned = time.Now()
			return struct{}{}, nil
		})
		if err != nil || !res.Acquired {
			return fmt.Errorf("round %d: %+v, %v", i, res, err)
		}
		w.Send(xproc.Msg{K: "rel", T: returned.UnixNano()})
	}
	return nil
}

// helperHold takes the lock "held" for the job's TTL on "go" and never comes out of fn:
// the parent kills it with SIGKILL. Once it holds the lock it says "held" with its pid
// and the Unix nanoseconds around the acquisition (T before, T2 after).
func helperHold(ctx context.Context, w *xproc.Worker) error {
	if err := w.Expect("go"); err != nil {
		return err
	}
	before := time.Now()
	res, err := cache.Lock(ctx, w.C, "held", w.Job.TTL, func(context.Context) (struct{}, error) {
		w.Send(xproc.Msg{K: "held", PID: os.Getpid(), T: before.UnixNano(), T2: time.Now().UnixNano()})
		time.Sleep(time.Hour)
		return struct{}{}, nil
	})
	if err == nil && !res.Acquired {
		err = errors.New("the lock was held")
	}
	return err
}

// helperWrite, on "go", writes values of up to 256 KiB to w.0 … w.9 and increments
// w.counter, as fast as it can, until it is killed. It says "wrote" after a first round.
func helperWrite(ctx context.Context, w *xproc.Worker) error {
	if err := w.Expect("go"); err != nil {
		return err
	}
	c := w.C
	for round := 0; ; round++ {
		for i := range 10 {
			v := writeValue(rand.IntN(256 << 10))
			if err := c.Set(ctx, fmt.Sprintf("w.%d", i), v, 0); err != nil {
				return err
			}
			if _, err := c.Increment(ctx, "w.counter", 1); err != nil {
				return err
			}
		}
		if round == 0 {
			w.Send(xproc.Msg{K: "wrote"})
		}
	}
}

// writeValue is a value whose content says its own length, so a torn value is visible.
func writeValue(n int) string {
	return fmt.Sprintf("%d:%s", n, strings.Repeat("x", n))
}

// ---- the parent side ----

const holdTTL = time.Second

// dirStore is a store on dir.
func dirStore(dir string) xproc.Store { return xproc.Store{Addr: dir} }

// newCacheOn returns a cache over a driver on dir, for the parent process.
func newCacheOn(t *testing.T, dir string) (*cache.Cache, *filecache.Driver) {
	t.Helper()
	d := newDriver(t, filecache.Options{Dir: dir})
	c, err := cache.New(cache.Config{Drivers: map[string]cache.Driver{"file": d}})
	if err != nil {
		t.Fatal(err)
	}
	return c, d
}

func runLockProcs(t *testing.T, mode string) lockResult {
	dir, aux := t.TempDir(), t.TempDir()
	ps := xproc.StartN(t, procs, xproc.Job{Mode: mode, Store: dirStore(dir), Aux: aux, N: 100})
	start := time.Now()
	xproc.Go(ps)
	var total lockResult
	for i, p := range ps {
		var r lockResult
		p.Result(&r)
		t.Logf("process %d (pid %d): ran %d, skipped %d, overlaps %d", i, p.Pid(), r.Ran, r.Skipped, r.Overlaps)
		total.Ran += r.Ran
		total.Skipped += r.Skipped
		total.Overlaps += r.Overlaps
	}
	t.Logf("%s: %d processes × 100 attempts in %v: ran %d, skipped %d, overlaps %d",
		mode, procs, time.Since(start).Round(time.Millisecond), total.Ran, total.Skipped, total.Overlaps)
	if total.Ran+total.Skipped != procs*100 {
		t.Fatalf("ran %d + skipped %d != %d attempts", total.Ran, total.Skipped, procs*100)
	}
	return total
}

// TestProcessesLockExclusive: 4 processes × 100 attempts at one lock; never two inside
// fn at once, and the lock is free at the end.
func TestProcessesLockExclusive(t *testing.T) {
	total := runLockProcs(t, "lock")
	if total.Overlaps != 0 {
		t.Fatalf("%d times two holders were inside fn at once", total.Overlaps)
	}
	if total.Ran == 0 || total.Skipped == 0 {
		t.Fatalf("ran %d, skipped %d: the processes did not contend", total.Ran, total.Skipped)
	}
}

// TestProcessesLockDetector is the negative control of TestProcessesLockExclusive: with
// Create done as a read then a write, the same detector sees holders overlap.
func TestProcessesLockDetector(t *testing.T) {
	if total := runLockProcs(t, "lock-racy"); total.Overlaps == 0 {
		t.Fatal("the overlap detector saw nothing on a racy Create: it proves nothing on the real one")
	}
}

// TestProcessesIncrement: 4 processes × 1000 Increments give exactly 4000, and every
// value 1 … 4000 was handed out exactly once.
func TestProcessesIncrement(t *testing.T) {
	const per = 1000
	dir := t.TempDir()
	ps := xproc.StartN(t, procs, xproc.Job{Mode: "incr", Store: dirStore(dir), N: per})
	start := time.Now()
	xproc.Go(ps)
	var all []int64
	for _, p := range ps {
		var got []int64
		p.Result(&got)
		if len(got) != per {
			t.Fatalf("a process got %d results; want %d", len(got), per)
		}
		all = append(all, got...)
	}
	elapsed := time.Since(start)
	c, _ := newCacheOn(t, dir)
	var n int64
	if found, err := c.Get(context.Background(), "counter", &n); !found || err != nil {
		t.Fatalf("Get(counter) = %v, %v", found, err)
	}
	t.Logf("%d processes × %d Increments in %v: counter = %d", procs, per, elapsed.Round(time.Millisecond), n)
	if n != procs*per {
		t.Fatalf("counter = %d; want %d", n, procs*per)
	}
	slices.Sort(all)
	for i, v := range all {
		if v != int64(i+1) {
			t.Fatalf("the values handed out are not 1 … %d, each once: at %d got %d", procs*per, i, v)
		}
	}
}

// TestProcessesPull: 4 processes pull the same 200 jobs; each job is handed out exactly
// once.
func TestProcessesPull(t *testing.T) {
	const jobs = 200
	dir := t.TempDir()
	c, _ := newCacheOn(t, dir)
	ctx := context.Background()
	for i := range jobs {
		if err := c.Set(ctx, fmt.Sprintf("job.%d", i), fmt.Sprintf("payload %d", i), time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	ps := xproc.StartN(t, procs, xproc.Job{Mode: "pull", Store: dirStore(dir), N: jobs})
	xproc.Go(ps)
	seen := make([]int, jobs)
	for i, p := range ps {
		var got []int
		p.Result(&got)
		t.Logf("process %d pulled %d jobs", i, len(got))
		for _, j := range got {
			seen[j]++
		}
	}
	for j, n := range seen {
		if n != 1 {
			t.Fatalf("job.%d was pulled %d times; want exactly once", j, n)
		}
	}
}

// TestProcessesFencing: 4 processes × 50 fenced locks; every token is handed out once,
// and each process sees its tokens increase.
func TestProcessesFencing(t *testing.T) {
	const per = 50
	ps := xproc.StartN(t, procs, xproc.Job{Mode: "fence", Store: dirStore(t.TempDir()), N: per})
	start := time.Now()
	xproc.Go(ps)
	var all []int64
	for i, p := range ps {
		got := p.Next("result").Tokens
		p.Exit()
		increasing := len(got) == per
		for j := 1; j < len(got); j++ {
			increasing = increasing && got[j] > got[j-1]
		}
		if !increasing {
			t.Fatalf("process %d got tokens %v; want %d increasing tokens", i, got, per)
		}
		all = append(all, got...)
	}
	slices.Sort(all)
	for i, v := range all {
		if v != int64(i+1) {
			t.Fatalf("the tokens are not 1 … %d, each once: at %d got %d", procs*per, i, v)
		}
	}
	t.Logf("%d processes × %d fenced locks (waiting) in %v: tokens 1 … %d, each once", procs, per, time.Since(start).Round(time.Millisecond), procs*per)
}

// TestProcessesLockWaitHandoff: a waiter in one process takes the lock when the holder
// in another process releases it, woken by the release (inotify on Linux, the stat
// poller elsewhere) rather than by its poll: its poll is stretched to an hour
// (wait.Probe), so a poll could win only when its one-minute Wait ends. The holder
// releases once the waiter's first attempt has failed. The latency is logged;
// BenchmarkLockHandoff measures it.
func TestProcessesLockWaitHandoff(t *testing.T) {
	const rounds = 20
	dir := t.TempDir()
	holder := xproc.Start(t, xproc.Job{Mode: "handoff", Store: dirStore(dir), N: rounds})
	holder.Next("ready")
	c, _ := newCacheOn(t, dir)
	lat := make([]time.Duration, 0, rounds)
	for i := range rounds {
		holder.Send("go")
		holder.Next("held")
		p := &wait.Probe{Poll: time.Hour}
		var once sync.Once
		p.Tried = func(_ wait.Why, done bool, err error) {
			if !done && err == nil {
				once.Do(func() { holder.Send("release") })
			}
		}
		out, err := cache.LockWith(wait.WithProbe(context.Background(), p), c, "ho", cache.LockOptions{TTL: 10 * time.Second, Wait: time.Minute},
			func(context.Context) (time.Time, error) { return time.Now(), nil })
		if err != nil || !out.Acquired {
			t.Fatalf("round %d: waiter = %+v, %v", i, out, err)
		}
		if why, _ := p.Done(); why != wait.Watched && p.WatchErrors() == 0 {
			t.Fatalf("round %d: the waiter's winning attempt was %v (%d first, %d watched, %d polled); want watched: woken by the release",
				i, why, p.Attempts(wait.First), p.Attempts(wait.Watched), p.Attempts(wait.Polled))
		}
		returned := holder.Next("rel").T
		lat = append(lat, out.Value.Sub(xproc.Time(returned)))
	}
	holder.Exit()
	median, _, worst := xproc.Stats(lat)
	t.Logf("cross-process handoff, holder's fn returned → waiter in fn, %d rounds: median %v, max %v (logged only)", rounds, median, worst)
}

// TestProcessKilledHoldingLock: a process killed with SIGKILL while it holds a lock with
// a 1 s TTL; another process takes the lock after the TTL, and not before: no attempt
// gets it before the TTL runs out, and every attempt that begins after it does.
func TestProcessKilledHoldingLock(t *testing.T) {
	dir := t.TempDir()
	holder := xproc.Start(t, xproc.Job{Mode: "hold-until-killed", Store: dirStore(dir), TTL: holdTTL})
	holder.Next("ready")
	holder.Send("go")
	held := holder.Next("held") // T and T2: Unix nanoseconds around the acquisition
	if held.PID != holder.Pid() {
		t.Fatalf("the holder says pid %d, started %d", held.PID, holder.Pid())
	}
	c, _ := newCacheOn(t, dir)
	ctx := context.Background()
	var owner string
	if found, err := c.Get(ctx, "held", &owner); !found || err != nil || !strings.HasPrefix(owner, fmt.Sprintf("pid.%d#", held.PID)) {
		t.Fatalf("the lock holds %q, %v, %v; want the holder's owner label", owner, found, err)
	}
	time.Sleep(holdTTL / 4)
	holder.Kill()
	killed := time.Now()

	earliest := xproc.Time(held.T).Add(holdTTL) // the lock expires no earlier
	latest := xproc.Time(held.T2).Add(holdTTL)  // and no later
	var refused int
	var acquiredAt, lastRefused time.Time // lastRefused: when the last refused attempt began
	for acquiredAt.IsZero() {
		began := time.Now()
		out, err := cache.Lock(ctx, c, "held", time.Minute, func(context.Context) (struct{}, error) {
			acquiredAt = time.Now()
			return struct{}{}, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if !out.Acquired {
			refused++
			lastRefused = began
			if time.Since(latest) > time.Minute { // a hang detector
				t.Fatal("the lock of a killed holder was not taken over in the minute after its TTL ran out")
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
	t.Logf("holder pid %d killed %v after it took the lock (TTL %v); %d attempts refused; taken over %v after the kill, %v after the TTL ran out",
		held.PID, killed.Sub(xproc.Time(held.T2)).Round(time.Millisecond), holdTTL, refused,
		acquiredAt.Sub(killed).Round(time.Millisecond), acquiredAt.Sub(latest).Round(time.Millisecond))
	if acquiredAt.Before(earliest) {
		t.Fatalf("the lock was taken over %v before its TTL ran out", earliest.Sub(acquiredAt))
	}
	if refused == 0 {
		t.Fatal("no attempt was refused between the kill and the TTL")
	}
	// Promptly: every attempt that began once the TTL had run out got the lock; the
	// instants are measured on one clock, before each attempt read the lock.
	if lastRefused.After(latest) {
		t.Fatalf("an attempt that began %v after the lock's TTL ran out was refused; want the lock", lastRefused.Sub(latest))
	}
}

// TestProcessKilledWriting: a process killed with SIGKILL in the middle of writes leaves
// every key either at a whole value or missing, never corrupt, and the counter whole.
// Its stray temporary files are not entries, and the sweep removes them once stale.
func TestProcessKilledWriting(t *testing.T) {
	dir := t.TempDir()
	for range 3 {
		writer := xproc.Start(t, xproc.Job{Mode: "write", Store: dirStore(dir)})
		writer.Next("ready")
		writer.Send("go")
		writer.Next("wrote")
		time.Sleep(time.Duration(50+rand.IntN(100)) * time.Millisecond)
		writer.Kill()
	}
	var log errorLog
	d := newDriver(t, filecache.Options{Dir: dir, SweepInterval: -1, OnError: log.add})
	c, err := cache.New(cache.Config{Drivers: map[string]cache.Driver{"file": d}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := range 10 {
		var s string
		found, err := c.Get(ctx, fmt.Sprintf("w.%d", i), &s)
		if err != nil || !found {
			t.Fatalf("Get(w.%d) = %v, %v; every key was written before the kill", i, found, err)
		}
		n, _, ok := strings.Cut(s, ":")
		if l, err := strconv.Atoi(n); !ok || err != nil || len(s) != len(n)+1+l {
			t.Fatalf("w.%d holds a torn value of %d bytes", i, len(s))
		}
	}
	var counter int64
	if found, err := c.Get(ctx, "w.counter", &counter); !found || err != nil || counter < 10 {
		t.Fatalf("Get(w.counter) = %d, %v, %v", counter, found, err)
	}
	if errs := log.take(); len(errs) != 0 {
		t.Fatalf("corrupt files after the kills: %v", errs)
	}
	temps, _ := filepath.Glob(filepath.Join(dir, ".tmp-*"))
	t.Logf("3 writers killed; counter %d; %d temporary files left behind", counter, len(temps))
	old := time.Now().Add(-time.Hour)
	for _, p := range temps {
		if err := os.Chtimes(p, old, old); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := d.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".tmp-*")); len(left) != 0 {
		t.Fatalf("the sweep left %d stale temporary files", len(left))
	}
}
