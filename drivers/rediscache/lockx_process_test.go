package rediscache_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/cachekit/cache"
	"github.com/cachekit/cache/drivers/rediscache"
	"github.com/cachekit/cache/internal/redistest"
)

// The cross-process proofs of issue 5 (waiting, auto-extend, lost-lock cancellation,
// fencing, distributed Remember, Once), each as a test that fails without its property,
// on a single Redis and on the 3-master Cluster. Every process is the test binary run
// again with lxEnv set to its job: init below runs the job and exits before TestMain, so
// these processes never run the tests. Each process has its own client, driver and
// cache.New. A process says what happens as JSON lines on stdout ("ready", events, its
// result) and takes its orders ("go", "release", "stop") as lines on stdin, so that the
// parent can order the steps of several processes without sharing anything but the store.

const lxEnv = "REDISCACHE_LOCKX_JOB" // the job of a child process, as JSON

func init() {
	if job := os.Getenv(lxEnv); job != "" {
		os.Exit(lxChild(job))
	}
}

// lxJob is what a child process does.
type lxJob struct {
	Mode        string        `json:"mode"`
	URL         string        `json:"url"`
	Prefix      string        `json:"prefix"`
	N           int           `json:"n"` // rounds or acquisitions
	G           int           `json:"g"` // goroutines
	TTL         time.Duration `json:"ttl"`
	Hold        time.Duration `json:"hold"`
	AutoExtend  bool          `json:"auto_extend"`
	Distributed bool          `json:"distributed"`
	LeakCheck   bool          `json:"leak_check"`
	DeafWatch   bool          `json:"deaf_watch"` // the waiter never hears a release
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

// lxMsg is one line a child process writes: its kind K, and what goes with it.
type lxMsg struct {
	K         string         `json:"k"`
	PID       int            `json:"pid,omitempty"`
	T         int64          `json:"t,omitempty"`  // Unix nanoseconds
	T2        int64          `json:"t2,omitempty"` // Unix nanoseconds
	N         int            `json:"n,omitempty"`
	Viol      int            `json:"viol,omitempty"`
	Ran       int            `json:"ran,omitempty"` // Once callers that saw Ran
	Tokens    []int64        `json:"tokens,omitempty"`
	Times     []int64        `json:"times,omitempty"`
	Attempts  []int64        `json:"attempts,omitempty"`
	Vals      map[string]int `json:"vals,omitempty"`
	Err       string         `json:"err,omitempty"`
	Cause     string         `json:"cause,omitempty"`
	Lost      bool           `json:"lost,omitempty"`       // Lock's error matches ErrLockLost
	CauseLost bool           `json:"cause_lost,omitempty"` // fn's ctx's cause matches ErrLockLost
	Leak      string         `json:"leak,omitempty"`
}

// lxOut writes a child's lines; goroutines may share it.
type lxOut struct {
	mu  sync.Mutex
	enc *json.Encoder
}

func (o *lxOut) send(m lxMsg) {
	o.mu.Lock()
	defer o.mu.Unlock()
	_ = o.enc.Encode(m)
}

func lxChild(raw string) int {
	var job lxJob
	out := &lxOut{enc: json.NewEncoder(os.Stdout)}
	fail := func(err error) int {
		out.send(lxMsg{K: "error", PID: os.Getpid(), Err: fmt.Sprintf("pid %d, job %s: %v", os.Getpid(), job.Mode, err)})
		return 1
	}
	if err := json.Unmarshal([]byte(raw), &job); err != nil {
		return fail(err)
	}
	d, err := rediscache.New(rediscache.Options{URL: job.URL})
	if err != nil {
		return fail(err)
	}
	var drv cache.Driver = d
	if job.DeafWatch {
		drv = lxDeafWatch{d}
	}
	c, err := cache.New(cache.Config{Drivers: map[string]cache.Driver{"redis": drv}, Prefix: job.Prefix})
	if err != nil {
		return fail(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	in := bufio.NewScanner(os.Stdin)
	recv := func() (string, error) {
		if !in.Scan() {
			return "", fmt.Errorf("stdin closed (%v)", in.Err())
		}
		return in.Text(), nil
	}
	// Connected before "ready": the parent's clock starts when every process is.
	if _, err := c.Has(ctx, "lx.warm"); err != nil {
		return fail(err)
	}
	out.send(lxMsg{K: "ready", PID: os.Getpid()})
	if err := lxRun(ctx, c, job, out, recv); err != nil {
		return fail(err)
	}
	return 0
}

// lxRun runs a child's job. It only uses the cache, so the file driver's proofs run the
// same jobs.
func lxRun(ctx context.Context, c *cache.Cache, job lxJob, out *lxOut, recv func() (string, error)) error {
	expect := func(want string) error {
		got, err := recv()
		if err == nil && got != want {
			err = fmt.Errorf("got order %q; want %q", got, want)
		}
		return err
	}
	switch job.Mode {
	case "fence":
		// N fenced acquisitions, waiting for each. Inside fn: the token must be above the
		// highest one any holder saw, a record that only fn reads and writes.
		if err := expect("go"); err != nil {
			return err
		}
		var res lxMsg
		for range job.N {
			o, err := cache.LockWith(ctx, c, "lx.fenced", cache.LockOptions{TTL: 10 * time.Second, Fencing: true, Wait: time.Minute},
				func(ctx context.Context) (struct{}, error) {
					tok, ok := cache.FencingToken(ctx)
					if !ok {
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
		out.send(res)
		return nil

	case "hold":
		// Hold the lock "lx.ae" for job.Hold, with or without AutoExtend. fn ignores its
		// ctx, as work that does not check it would: only the lock keeps others out.
		if err := expect("go"); err != nil {
			return err
		}
		var start, end int64
		var cause error
		_, err := cache.LockWith(ctx, c, "lx.ae", cache.LockOptions{TTL: job.TTL, AutoExtend: job.AutoExtend},
			func(fctx context.Context) (struct{}, error) {
				start = time.Now().UnixNano()
				out.send(lxMsg{K: "held", T: start})
				time.Sleep(job.Hold)
				cause = context.Cause(fctx)
				end = time.Now().UnixNano()
				return struct{}{}, nil
			})
		if start == 0 {
			return fmt.Errorf("the holder did not get the lock: %v", err)
		}
		res := lxMsg{K: "result", T: start, T2: end, Lost: errors.Is(err, cache.ErrLockLost), CauseLost: errors.Is(cause, cache.ErrLockLost)}
		if err != nil {
			res.Err = err.Error()
		}
		if cause != nil {
			res.Cause = cause.Error()
		}
		out.send(res)
		return nil

	case "contend":
		// Try to take "lx.ae" every TTL/4 from "go" to "stop"; report every attempt and
		// every acquisition (when fn ran).
		if err := expect("go"); err != nil {
			return err
		}
		stop := make(chan error, 1)
		go func() { stop <- expect("stop") }()
		var res lxMsg
		t := time.NewTicker(job.TTL / 4)
		defer t.Stop()
		for {
			res.Attempts = append(res.Attempts, time.Now().UnixNano())
			_, err := cache.Lock(ctx, c, "lx.ae", job.TTL, func(context.Context) (struct{}, error) {
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
				out.send(res)
				return nil
			case <-t.C:
			}
		}

	case "lost":
		// N rounds: on "go", hold "lx.lost" under AutoExtend until fn's ctx ends (the
		// parent kills the renewal path meanwhile), and report when and why it ended.
		for range job.N {
			if err := expect("go"); err != nil {
				return err
			}
			var ended int64
			var cause error
			_, err := cache.LockWith(ctx, c, "lx.lost", cache.LockOptions{TTL: job.TTL, AutoExtend: true},
				func(fctx context.Context) (struct{}, error) {
					out.send(lxMsg{K: "held", T: time.Now().UnixNano()})
					select {
					case <-fctx.Done():
					case <-time.After(job.Hold):
						return struct{}{}, errors.New("fn's ctx was not cancelled")
					}
					ended = time.Now().UnixNano()
					cause = context.Cause(fctx)
					return struct{}{}, fctx.Err()
				})
			if ended == 0 {
				return fmt.Errorf("fn's ctx did not end: %v", err)
			}
			res := lxMsg{K: "result", T: ended, Lost: errors.Is(err, cache.ErrLockLost), CauseLost: errors.Is(cause, cache.ErrLockLost)}
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
			out.send(res)
		}
		return nil

	case "handoff-holder", "handoff-waiter":
		// N rounds. The holder takes "lx.ho" on "hold", says "held", and returns from fn
		// on "release", reporting when fn returned (T) and when Lock returned (T2). The
		// waiter says "waiting" on "wait", then waits for the lock and reports when its
		// fn started.
		holder := job.Mode == "handoff-holder"
		for i := range job.N {
			if holder {
				if err := expect("hold"); err != nil {
					return err
				}
				var returned int64
				o, err := cache.Lock(ctx, c, "lx.ho", 10*time.Second, func(context.Context) (struct{}, error) {
					out.send(lxMsg{K: "held"})
					if err := expect("release"); err != nil {
						return struct{}{}, err
					}
					returned = time.Now().UnixNano()
					return struct{}{}, nil
				})
				if err != nil || !o.Acquired {
					return fmt.Errorf("holder, round %d: %+v, %w", i, o, err)
				}
				out.send(lxMsg{K: "rel", T: returned, T2: time.Now().UnixNano()})
				continue
			}
			if err := expect("wait"); err != nil {
				return err
			}
			out.send(lxMsg{K: "waiting"})
			o, err := cache.LockWith(ctx, c, "lx.ho", cache.LockOptions{TTL: 10 * time.Second, Wait: 10 * time.Second},
				func(context.Context) (int64, error) { return time.Now().UnixNano(), nil })
			if err != nil || !o.Acquired {
				return fmt.Errorf("waiter, round %d: %+v, %w", i, o, err)
			}
			out.send(lxMsg{K: "acq", T: o.Value})
		}
		return nil

	case "remember", "once":
		// G goroutines at once on one cold key: RememberWith (Distributed or not) or
		// Once. The loader counts its runs in the store ("lx.loads") and in the process,
		// and takes 100 ms.
		if err := expect("go"); err != nil {
			return err
		}
		var mu sync.Mutex
		res := lxMsg{K: "result", Vals: map[string]int{}}
		var loads, ran atomic.Int64
		loader := func(ctx context.Context) (string, error) {
			n, err := c.Increment(ctx, "lx.loads", 1)
			if err != nil {
				return "", err
			}
			loads.Add(1)
			time.Sleep(100 * time.Millisecond)
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
		out.send(res)
		return nil
	}
	return fmt.Errorf("unknown mode %q", job.Mode)
}

// ---- the parent side ----

// lxProc is a running child process.
type lxProc struct {
	t      *testing.T
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan string
	stderr *lxBuffer
	done   chan struct{} // closed when the process has exited
	err    error         // its exit, once done is closed
}

// lxBuffer is a bytes.Buffer that the process's stderr copier and the test may share.
type lxBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lxBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lxBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// lxStart starts a child process on job; it is killed at the end of the test if it is
// still running. It returns once the process says it is ready (connected).
func lxStart(t *testing.T, job lxJob) *lxProc {
	t.Helper()
	raw, err := json.Marshal(job)
	if err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	p := &lxProc{t: t, cmd: exec.Command(exe, "-test.run=^$"), lines: make(chan string, 1024), stderr: &lxBuffer{}, done: make(chan struct{})}
	// The race runtime sleeps a second at exit by default: not needed by processes that
	// have closed everything they started.
	p.cmd.Env = append(os.Environ(), lxEnv+"="+string(raw), "GORACE="+strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	p.cmd.Stderr = p.stderr
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if p.stdin, err = p.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(nil, 16<<20)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
		close(p.lines)
		p.err = p.cmd.Wait() // after the last read of stdout, as exec requires
		close(p.done)
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		_ = p.stdin.Close()
		<-p.done
	})
	return p
}

// next reads the process's next line, which must be of kind k.
func (p *lxProc) next(k string) lxMsg {
	p.t.Helper()
	var line string
	select {
	case l, ok := <-p.lines:
		if !ok {
			<-p.done
			p.t.Fatalf("pid %d (%s) ended (%v) without a %q line; stderr:\n%s", p.cmd.Process.Pid, p.mode(), p.err, k, p.stderr.String())
		}
		line = l
	case <-time.After(90 * time.Second):
		p.t.Fatalf("pid %d (%s): no %q line after 90s; stderr:\n%s", p.cmd.Process.Pid, p.mode(), k, p.stderr.String())
	}
	var m lxMsg
	if err := json.Unmarshal([]byte(line), &m); err != nil {
		p.t.Fatalf("pid %d (%s): line %q: %v", p.cmd.Process.Pid, p.mode(), line, err)
	}
	if m.K == "error" {
		p.t.Fatalf("child failed: %s; stderr:\n%s", m.Err, p.stderr.String())
	}
	if m.K != k {
		p.t.Fatalf("pid %d (%s): got a %q line; want %q: %s", p.cmd.Process.Pid, p.mode(), m.K, k, line)
	}
	return m
}

// send gives the process an order.
func (p *lxProc) send(order string) {
	p.t.Helper()
	if _, err := io.WriteString(p.stdin, order+"\n"); err != nil {
		p.t.Fatalf("pid %d (%s): order %q: %v", p.cmd.Process.Pid, p.mode(), order, err)
	}
}

// exit waits for the process to end and fails the test unless it ended cleanly.
func (p *lxProc) exit() {
	p.t.Helper()
	select {
	case <-p.done:
	case <-time.After(90 * time.Second):
		p.t.Fatalf("pid %d (%s) did not exit", p.cmd.Process.Pid, p.mode())
	}
	if p.err != nil {
		p.t.Fatalf("pid %d (%s): %v; stderr:\n%s", p.cmd.Process.Pid, p.mode(), p.err, p.stderr.String())
	}
}

func (p *lxProc) mode() string {
	for _, e := range p.cmd.Env {
		if v, ok := strings.CutPrefix(e, lxEnv+"="); ok {
			var j lxJob
			_ = json.Unmarshal([]byte(v), &j)
			return j.Mode
		}
	}
	return "?"
}

// lxStartN starts n processes on job, all ready when it returns.
func lxStartN(t *testing.T, n int, job lxJob) []*lxProc {
	t.Helper()
	ps := make([]*lxProc, n)
	for i := range ps {
		ps[i] = lxStart(t, job)
	}
	for _, p := range ps {
		p.next("ready")
	}
	return ps
}

func lxTime(ns int64) time.Time { return time.Unix(0, ns) }

// lxStats returns the median, p90 and max of ds, which it sorts.
func lxStats(ds []time.Duration) (median, p90, maxd time.Duration) {
	slices.Sort(ds)
	return ds[len(ds)/2], ds[len(ds)*9/10], ds[len(ds)-1]
}

// TestXProcFencing: 4 OS processes × 250 fenced acquisitions of one key, each waiting
// for the lock (Wait), 1000 in all. Every token is unique, and inside fn every token is
// strictly above the highest any holder saw before it (a record in Redis that only fn
// reads and writes): zero violations.
func TestXProcFencing(t *testing.T) {
	const procs, per = 4, 250
	forTargets(t, func(t *testing.T, url string) {
		prefix := scope("xfence")
		newCache(t, url, prefix) // flushes the prefix at the end
		ps := lxStartN(t, procs, lxJob{Mode: "fence", URL: url, Prefix: prefix, N: per})
		start := time.Now()
		for _, p := range ps {
			p.send("go")
		}
		var all []int64
		var viol int
		for i, p := range ps {
			r := p.next("result")
			p.exit()
			increasing := true
			for j := 1; j < len(r.Tokens); j++ {
				increasing = increasing && r.Tokens[j] > r.Tokens[j-1]
			}
			t.Logf("process %d (pid %d): %d acquisitions, tokens %d … %d, increasing %v, %d violations of the highest-seen record",
				i, p.cmd.Process.Pid, len(r.Tokens), r.Tokens[0], r.Tokens[len(r.Tokens)-1], increasing, r.Viol)
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
	})
}

// lxAutoExtendRun runs one holder of "lx.ae" (TTL ttl, fn 5×ttl, with or without
// AutoExtend) against 3 processes that try to take it every ttl/4, and returns the
// holder's result, the contenders' acquisitions while the holder's fn ran, and their
// attempts in that time.
func lxAutoExtendRun(t *testing.T, url string, ttl time.Duration, autoExtend bool) (held lxMsg, inside, tries int) {
	t.Helper()
	prefix := scope("xae")
	newCache(t, url, prefix)
	holder := lxStart(t, lxJob{Mode: "hold", URL: url, Prefix: prefix, TTL: ttl, Hold: 5 * ttl, AutoExtend: autoExtend})
	others := lxStartN(t, 3, lxJob{Mode: "contend", URL: url, Prefix: prefix, TTL: ttl})
	holder.next("ready")
	holder.send("go")
	holder.next("held")
	for _, p := range others {
		p.send("go")
	}
	held = holder.next("result")
	holder.exit()
	for _, p := range others {
		p.send("stop")
	}
	from, to := held.T, held.T2
	for i, p := range others {
		r := p.next("result")
		p.exit()
		var in, tr int
		for _, at := range r.Times {
			if at >= from && at <= to {
				in++
			}
		}
		for _, at := range r.Attempts {
			if at >= from && at <= to {
				tr++
			}
		}
		t.Logf("contender %d (pid %d): %d attempts while the holder's fn ran, %d of them acquired (%d attempts, %d acquisitions in all)",
			i, p.cmd.Process.Pid, tr, in, len(r.Attempts), len(r.Times))
		inside += in
		tries += tr
	}
	t.Logf("AutoExtend %v, TTL %v: the holder's fn ran %v; Lock's error: %v; fn's ctx cause: %v; the 3 contenders made %d attempts in that time and acquired %d times",
		autoExtend, ttl, lxTime(to).Sub(lxTime(from)).Round(time.Millisecond), held.Err, held.Cause, tries, inside)
	return held, inside, tries
}

// TestXProcAutoExtend: a holder whose fn runs 5 TTLs under AutoExtend is never
// overlapped by 3 other processes that try to take the lock every TTL/4, and its fn's
// ctx is never cancelled. The negative control runs the same without AutoExtend: the
// others get in, so the test would fail without the renewal.
func TestXProcAutoExtend(t *testing.T) {
	const ttl = 300 * time.Millisecond
	forTargets(t, func(t *testing.T, url string) {
		held, inside, tries := lxAutoExtendRun(t, url, ttl, true)
		if inside != 0 {
			t.Fatalf("other processes acquired the lock %d times while the holder's fn ran under AutoExtend", inside)
		}
		if tries < 30 {
			t.Fatalf("the contenders made only %d attempts while the holder ran: they did not contend", tries)
		}
		if held.Err != "" || held.Cause != "" {
			t.Fatalf("under AutoExtend, Lock's error = %q and fn's ctx cause = %q; want neither", held.Err, held.Cause)
		}
		if ran := lxTime(held.T2).Sub(lxTime(held.T)); ran < 5*ttl {
			t.Fatalf("the holder's fn ran %v; want at least 5 TTLs (%v)", ran, 5*ttl)
		}
	})
	t.Run("negative-control", func(t *testing.T) {
		held, inside, _ := lxAutoExtendRun(t, redistest.URL(t), ttl, false)
		if inside == 0 {
			t.Fatal("without AutoExtend nobody got in while the holder's fn outlived its TTL: the test above proves nothing")
		}
		if !held.Lost || !held.CauseLost {
			t.Fatalf("without AutoExtend, Lock's error %q, fn's ctx cause %q; want both ErrLockLost", held.Err, held.Cause)
		}
	})
}

// lxLostCheck checks one lost-lock round: fn's ctx ended with ErrLockLost within one
// renewal interval (TTL/3) plus slack of the kill, and Lock's error says so.
func lxLostCheck(t *testing.T, what string, ttl time.Duration, killed time.Time, r lxMsg) time.Duration {
	t.Helper()
	interval := ttl / 3
	const slack = 50 * time.Millisecond
	took := lxTime(r.T).Sub(killed)
	t.Logf("%s: fn's ctx ended %v after it (renewal interval %v, bound %v); cause: %v; Lock's error: %v",
		what, took.Round(100*time.Microsecond), interval, interval+slack, r.Cause, r.Err)
	if !r.CauseLost || !r.Lost {
		t.Errorf("%s: fn's ctx cause %q (ErrLockLost: %v), Lock's error %q (ErrLockLost: %v); want both ErrLockLost", what, r.Cause, r.CauseLost, r.Err, r.Lost)
	}
	if took > interval+slack {
		t.Errorf("%s: fn's ctx ended %v after it; want within one renewal interval (%v) + %v", what, took, interval, slack)
	}
	return took
}

// TestXProcLostForceRelease: while a holder process runs fn under AutoExtend, another
// process (this one) deletes the lock with cache.ForceRelease; the holder's fn ctx is
// cancelled with cause ErrLockLost within one renewal interval, and its Lock's error
// matches ErrLockLost. Five rounds, the delete at a random point of the renewal period.
func TestXProcLostForceRelease(t *testing.T) {
	const ttl, rounds = 300 * time.Millisecond, 5
	forTargets(t, func(t *testing.T, url string) {
		ctx := context.Background()
		prefix := scope("xlost")
		c, _ := newCache(t, url, prefix)
		holder := lxStart(t, lxJob{Mode: "lost", URL: url, Prefix: prefix, N: rounds, TTL: ttl, Hold: 10 * time.Second})
		holder.next("ready")
		var took []time.Duration
		for i := range rounds {
			holder.send("go")
			holder.next("held")
			// Past a renewal or two, at a random phase of the renewal period.
			time.Sleep(ttl/3 + rand.N(ttl/3))
			if info, err := cache.InspectLock(ctx, c, "lx.lost"); err != nil || !info.Held {
				t.Fatalf("round %d: InspectLock = %+v, %v; want held", i, info, err)
			}
			killed := time.Now()
			if err := cache.ForceRelease(ctx, c, "lx.lost"); err != nil {
				t.Fatal(err)
			}
			took = append(took, lxLostCheck(t, fmt.Sprintf("round %d, ForceRelease from pid %d", i, os.Getpid()), ttl, killed, holder.next("result")))
		}
		holder.exit()
		median, p90, worst := lxStats(took)
		t.Logf("ForceRelease → fn's ctx cancelled, %d rounds: median %v, p90 %v, max %v (renewal interval %v)", rounds, median, p90, worst, ttl/3)
	})
}

// TestXProcLostServerStopped: the holder's own Redis server is killed while fn runs
// under AutoExtend: fn's ctx is cancelled with cause ErrLockLost within one renewal
// interval of the kill (plus the failed renewal's round trip, a refused dial: renewals
// run on the driver's fail-fast client, see renewClient), Lock's error matches
// ErrLockLost, the process does not panic, and after Close no goroutine is left in it.
// Without the fail-fast renewal client this fails: go-redis redials 5 times, 100 ms
// apart, until the renewal's own timeout, and fn's ctx ended 104 to 197 ms after the
// kill for an interval of 100 ms.
func TestXProcLostServerStopped(t *testing.T) {
	const ttl = 300 * time.Millisecond
	srv := redistest.Start(t)
	holder := lxStart(t, lxJob{Mode: "lost", URL: srv.URL(), N: 1, TTL: ttl, Hold: 10 * time.Second, LeakCheck: true})
	holder.next("ready")
	holder.send("go")
	holder.next("held")
	time.Sleep(ttl/3 + rand.N(ttl/3))
	killed := time.Now()
	srv.Stop()
	r := holder.next("result")
	holder.exit() // a panic would show as an exit status
	took := lxTime(r.T).Sub(killed)
	t.Logf("redis-server (%s) killed: fn's ctx ended %v after it (renewal interval %v, renewal timeout %v, TTL %v); cause: %v; Lock's error: %v",
		srv.Kind(), took.Round(100*time.Microsecond), ttl/3, ttl/3, ttl, r.Cause, r.Err)
	if !r.CauseLost || !r.Lost {
		t.Errorf("fn's ctx cause %q (ErrLockLost: %v), Lock's error %q (ErrLockLost: %v); want both ErrLockLost", r.Cause, r.CauseLost, r.Err, r.Lost)
	}
	// The kill lands between two renewals; the next one fails. Slack: that renewal's
	// refused dial and the scheduling of two processes on a busy machine.
	if limit := ttl/3 + 25*time.Millisecond; took > limit {
		t.Errorf("fn's ctx ended %v after the kill; want within one renewal interval (%v) plus 25 ms of slack", took, ttl/3)
	}
	if r.Leak != "" {
		t.Fatalf("goroutines left in the holder after Close: %s", r.Leak)
	}
}

// lxRemember runs 4 processes × 50 goroutines of RememberWith on one cold key and
// returns the loads counted in the store, the values the callers got, and how many
// processes loaded.
func lxRemember(t *testing.T, url string, distributed bool) (loads int64, vals map[string]int, loaders int) {
	t.Helper()
	const procs, goroutines = 4, 50
	prefix := scope("xremember")
	c, _ := newCache(t, url, prefix)
	ps := lxStartN(t, procs, lxJob{Mode: "remember", URL: url, Prefix: prefix, G: goroutines, Distributed: distributed})
	start := time.Now()
	for _, p := range ps {
		p.send("go")
	}
	vals = map[string]int{}
	var calls int
	for i, p := range ps {
		r := p.next("result")
		p.exit()
		t.Logf("process %d (pid %d): the loader ran %d times; values: %v", i, p.cmd.Process.Pid, r.N, r.Vals)
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

// TestXProcRememberDistributed: 4 processes × 50 goroutines call RememberWith with
// Distributed on one cold key: the loader (100 ms, counted with an INCR) runs once in
// all, and every caller gets its value. The negative control, without Distributed,
// loads in more than one process.
//
// A waiting caller whose Watch cannot finish its SUBSCRIBE within loadDistributed's 50 ms
// poll window polls that turn instead of failing (it used to get the Watch's error).
func TestXProcRememberDistributed(t *testing.T) {
	forTargets(t, func(t *testing.T, url string) {
		loads, vals, _ := lxRemember(t, url, true)
		if loads != 1 || len(vals) != 1 {
			t.Fatalf("the loader ran %d times, the callers got %d distinct values; want 1 and 1", loads, len(vals))
		}
	})
	t.Run("negative-control", func(t *testing.T) {
		loads, _, loaders := lxRemember(t, redistest.URL(t), false)
		if loads <= 1 || loaders <= 1 {
			t.Fatalf("without Distributed the loader ran %d times in %d processes; want more than one: the test above proves nothing", loads, loaders)
		}
	})
}

// lxHandoff runs rounds handoffs of "lx.ho" from a holder process to a waiter process
// and returns the latencies from the holder's fn returning (its release follows) to the
// waiter's fn running, sorted.
func lxHandoff(t *testing.T, url string, rounds int, deaf bool) []time.Duration {
	t.Helper()
	prefix := scope("xhandoff")
	newCache(t, url, prefix)
	holder := lxStart(t, lxJob{Mode: "handoff-holder", URL: url, Prefix: prefix, N: rounds})
	waiter := lxStart(t, lxJob{Mode: "handoff-waiter", URL: url, Prefix: prefix, N: rounds, DeafWatch: deaf})
	holder.next("ready")
	waiter.next("ready")
	fromReturn := make([]time.Duration, 0, rounds)
	fromReleased := make([]time.Duration, 0, rounds)
	for range rounds {
		holder.send("hold")
		holder.next("held")
		waiter.send("wait")
		waiter.next("waiting")
		// The waiter finds the lock held and waits; its backoff poll grows meanwhile.
		time.Sleep(60 * time.Millisecond)
		holder.send("release")
		rel := holder.next("rel")
		acq := waiter.next("acq")
		fromReturn = append(fromReturn, lxTime(acq.T).Sub(lxTime(rel.T)))
		fromReleased = append(fromReleased, lxTime(acq.T).Sub(lxTime(rel.T2)))
	}
	holder.exit()
	waiter.exit()
	median, p90, worst := lxStats(fromReturn)
	rmedian, rp90, rworst := lxStats(fromReleased)
	t.Logf("cross-process handoff (waiter deaf to releases: %v) over %d rounds, holder's fn returned → waiter's fn running: median %v, p90 %v, max %v",
		deaf, rounds, median, p90, worst)
	t.Logf("holder's Lock returned (release done) → waiter's fn running: median %v, p90 %v, max %v", rmedian, rp90, rworst)
	return fromReturn
}

// TestXProcWaitHandoff: a holder process releases and a waiter process (LockOptions.Wait)
// acquires, 50 times. The latency from the holder's fn returning (its release follows) to
// the waiter's fn running has a median under 10 ms: the waiter wakes on the release's
// notification (PUBLISH), not on its backoff poll, which by then sleeps tens of
// milliseconds. The negative control gives the waiter a Watch that never hears a
// release: its median is then above 10 ms, so the test would fail without the
// notification.
func TestXProcWaitHandoff(t *testing.T) {
	const limit = 10 * time.Millisecond
	forTargets(t, func(t *testing.T, url string) {
		if median, _, _ := lxStats(lxHandoff(t, url, 50, false)); median > limit {
			t.Fatalf("median handoff %v; want under %v", median, limit)
		}
	})
	t.Run("negative-control", func(t *testing.T) {
		if median, _, _ := lxStats(lxHandoff(t, redistest.URL(t), 20, true)); median <= limit {
			t.Fatalf("without the release notification the median handoff is %v, within %v: the test above proves nothing", median, limit)
		}
	})
}

// TestXProcOnce: 4 processes × 25 goroutines call cache.Once on one key: fn (100 ms,
// counted with an INCR) runs once in all, and every caller gets its value.
func TestXProcOnce(t *testing.T) {
	const procs, goroutines = 4, 25
	forTargets(t, func(t *testing.T, url string) {
		prefix := scope("xonce")
		c, _ := newCache(t, url, prefix)
		ps := lxStartN(t, procs, lxJob{Mode: "once", URL: url, Prefix: prefix, G: goroutines})
		start := time.Now()
		for _, p := range ps {
			p.send("go")
		}
		vals := map[string]int{}
		var ran, calls int
		for i, p := range ps {
			r := p.next("result")
			p.exit()
			t.Logf("process %d (pid %d): fn ran %d times, %d callers saw Ran; values: %v", i, p.cmd.Process.Pid, r.N, r.Ran, r.Vals)
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
	})
}
