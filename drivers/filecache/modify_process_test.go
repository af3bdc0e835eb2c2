package filecache_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cachekit/cache"
	"github.com/cachekit/cache/drivers/filecache"
)

// Cross-process proofs of cache.Modify (the Update) and of List pushes on the
// file driver: the test binary re-executes itself with modChildEnv set, and init below
// runs the job and exits before TestMain, so these processes never run the tests. They
// share one cache directory.
const (
	modChildEnv = "FILECACHE_MODIFY_CHILD" // the mode: "modify", "naive" or "push"
	modMaxEnv   = "FILECACHE_MODIFY_MAX"   // ModifyOptions.MaxAttempts; 0: cache.Modify's default
	modPer      = 250
)

func init() {
	if mode := os.Getenv(modChildEnv); mode != "" {
		os.Exit(modChildMain(mode))
	}
}

// tally is the value the processes increment: a struct with a map, as JSON in a file.
type tally struct {
	N  int            `json:"n"`
	By map[string]int `json:"by"` // increments per process
}

// modResult is what one process reports.
type modResult struct {
	PID      int    `json:"pid"`
	Done     int    `json:"done"`      // operations that returned without error
	Calls    int    `json:"calls"`     // calls of the Modify fn (Done + CAS retries)
	MaxCalls int    `json:"max_calls"` // the most fn calls one Modify needed
	Errors   int    `json:"errors"`
	Conflict int    `json:"conflict"` // errors that match cache.ErrConflict
	FirstErr string `json:"first_err,omitempty"`
}

// pushed is what the push processes append: who pushed it and its rank in that process.
type pushed struct {
	P int `json:"p"`
	I int `json:"i"`
}

func modChildMain(mode string) int {
	dir, aux := os.Getenv(dirEnv), os.Getenv(auxEnv)
	n, _ := strconv.Atoi(os.Getenv(countEnv))
	maxAttempts, _ := strconv.Atoi(os.Getenv(modMaxEnv))
	id, _ := strconv.Atoi(os.Getenv("FILECACHE_MODIFY_ID"))
	fail := func(err error) int {
		fmt.Fprintf(os.Stderr, "child %d (%s, pid %d): %v\n", id, mode, os.Getpid(), err)
		return 1
	}
	var reported atomic.Int64
	d, err := filecache.New(filecache.Options{Dir: dir, OnError: func(err error) {
		reported.Add(1)
		fmt.Fprintln(os.Stderr, "OnError:", err)
	}})
	if err != nil {
		return fail(err)
	}
	defer d.Close()
	c, err := cache.New(cache.Config{Drivers: map[string]cache.Driver{"file": d}})
	if err != nil {
		return fail(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// Ready, then wait for the start file: every process starts at the same moment.
	if err := os.WriteFile(filepath.Join(aux, "ready."+strconv.Itoa(id)), nil, 0o600); err != nil {
		return fail(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(aux, "start")); err == nil {
			break
		}
		if ctx.Err() != nil {
			return fail(errors.New("no start signal"))
		}
		time.Sleep(time.Millisecond)
	}

	res := modResult{PID: os.Getpid()}
	me := strconv.Itoa(id)
	note := func(err error) {
		res.Errors++
		if errors.Is(err, cache.ErrConflict) {
			res.Conflict++
		}
		if res.FirstErr == "" {
			res.FirstErr = err.Error()
		}
	}
	list := cache.NewList[pushed](c, "list", time.Minute)
	for i := range n {
		switch mode {
		case "modify":
			calls := 0
			inc := func(cur tally, _ bool) (tally, error) {
				calls++
				if cur.By == nil {
					cur.By = map[string]int{}
				}
				cur.N++
				cur.By[me]++
				return cur, nil
			}
			var err error
			if maxAttempts == 0 {
				_, err = cache.Modify(ctx, c, "tally", inc)
			} else {
				_, err = cache.ModifyWith(ctx, c, "tally", cache.ModifyOptions{MaxAttempts: maxAttempts}, inc)
			}
			res.Calls += calls
			res.MaxCalls = max(res.MaxCalls, calls)
			if err != nil {
				note(err)
				continue
			}
		case "naive": // read, change, write: two steps, another process may write between
			var cur tally
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
			if _, err := list.Push(ctx, pushed{P: id, I: i}); err != nil {
				note(err)
				continue
			}
		default:
			return fail(fmt.Errorf("unknown mode %q", mode))
		}
		res.Done++
	}
	if r := reported.Load(); r != 0 {
		return fail(fmt.Errorf("%d problems reported to OnError", r))
	}
	b, _ := json.Marshal(res)
	fmt.Printf("RESULT %s\n", b)
	return 0
}

// runModProcs starts procs processes in mode on dir, each doing count operations,
// releases them together once all are ready, and returns their results.
func runModProcs(t *testing.T, mode, dir string, count, maxAttempts int) []modResult {
	t.Helper()
	aux := t.TempDir()
	type proc struct {
		cmd            *exec.Cmd
		stdout, stderr strings.Builder
	}
	ps := make([]*proc, procs)
	for i := range ps {
		p := &proc{cmd: exec.Command(os.Args[0], "-test.run=^$")}
		p.cmd.Env = append(os.Environ(), modChildEnv+"="+mode, dirEnv+"="+dir, auxEnv+"="+aux,
			countEnv+"="+strconv.Itoa(count), modMaxEnv+"="+strconv.Itoa(maxAttempts), "FILECACHE_MODIFY_ID="+strconv.Itoa(i),
			// The race detector sleeps 1 s at exit by default: not here, where every run starts 4.
			"GORACE="+strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
		p.cmd.Stdout, p.cmd.Stderr = &p.stdout, &p.stderr
		if err := p.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		ps[i] = p
	}
	done := make(chan struct{})
	errs := make([]error, procs)
	go func() {
		defer close(done)
		for i, p := range ps {
			errs[i] = p.cmd.Wait()
		}
	}()
	t.Cleanup(func() {
		for _, p := range ps {
			_ = p.cmd.Process.Kill()
		}
		<-done
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		ready, _ := filepath.Glob(filepath.Join(aux, "ready.*"))
		if len(ready) == procs {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d processes ready after 30s", len(ready), procs)
		}
		time.Sleep(2 * time.Millisecond)
	}
	release(t, aux)
	<-done
	results := make([]modResult, procs)
	for i, p := range ps {
		if errs[i] != nil {
			t.Fatalf("process %d: %v\nstderr: %s", i, errs[i], p.stderr.String())
		}
		found := false
		sc := bufio.NewScanner(strings.NewReader(p.stdout.String()))
		for sc.Scan() {
			if line, ok := strings.CutPrefix(sc.Text(), "RESULT "); ok {
				if err := json.Unmarshal([]byte(line), &results[i]); err != nil {
					t.Fatal(err)
				}
				found = true
			}
		}
		if !found {
			t.Fatalf("process %d printed no result; stdout: %s\nstderr: %s", i, p.stdout.String(), p.stderr.String())
		}
	}
	return results
}

// TestProcessesModify: 4 OS processes, each with its own driver on one directory, run
// 250 cache.Modify increments each on one key holding a struct counter.
//
//   - "exact": with MaxAttempts 1000, every call succeeds and the total is exactly 1000,
//     each process's own count exactly 250. The CAS retries (fn runs beyond one per
//     call) show that the processes contended.
//   - "default": plain cache.Modify, whose 10 attempts may run out under this
//     contention: a call that runs out returns ErrConflict and must have changed
//     nothing, so the total is exactly the number of calls that succeeded.
func TestProcessesModify(t *testing.T) {
	for _, v := range []struct {
		name        string
		maxAttempts int
	}{{"exact", 1000}, {"default", 0}} {
		t.Run(v.name, func(t *testing.T) {
			dir := t.TempDir()
			start := time.Now()
			res := runModProcs(t, "modify", dir, modPer, v.maxAttempts)
			elapsed := time.Since(start)
			var done, calls, maxCalls, errs, conflicts int
			for i, r := range res {
				t.Logf("process %d (pid %d): %d Modify calls done, fn ran %d times (%d CAS retries, at most %d runs for one call), %d errors (%d ErrConflict) %s",
					i, r.PID, r.Done, r.Calls, r.Calls-modPer, r.MaxCalls, r.Errors, r.Conflict, r.FirstErr)
				done += r.Done
				calls += r.Calls
				maxCalls = max(maxCalls, r.MaxCalls)
				errs += r.Errors
				conflicts += r.Conflict
			}
			got := readTally(t, dir)
			t.Logf("%d processes × %d Modify (MaxAttempts %d) in %v: total %d, successful calls %d, per process %v; %d CAS retries in all, at most %d fn runs for one Modify; %d calls ended in ErrConflict",
				procs, modPer, v.maxAttempts, elapsed.Round(time.Millisecond), got.N, done, got.By, calls-procs*modPer, maxCalls, conflicts)
			if errs != conflicts {
				t.Fatalf("%d Modify calls failed with an error other than ErrConflict", errs-conflicts)
			}
			if got.N != done {
				t.Fatalf("total = %d after %d successful Modify increments: updates were lost or doubled", got.N, done)
			}
			for i, r := range res {
				if n := got.By[strconv.Itoa(i)]; n != r.Done {
					t.Fatalf("process %d's count = %d; it made %d successful Modify calls", i, n, r.Done)
				}
			}
			if calls == procs*modPer {
				t.Logf("note: no CAS retry at all: the processes did not contend this time")
			}
			if v.maxAttempts != 0 && got.N != procs*modPer {
				t.Fatalf("total = %d; want exactly %d", got.N, procs*modPer)
			}
		})
	}
}

// readTally reads the final tally in dir with a driver of this process.
func readTally(t *testing.T, dir string) tally {
	t.Helper()
	c, _ := newCacheOn(t, dir)
	var got tally
	if found, err := c.Get(context.Background(), "tally", &got); !found || err != nil {
		t.Fatalf("Get(tally) = %v, %v", found, err)
	}
	return got
}

// TestProcessesModifyNegativeControl: the same processes with a plain Get-then-Set lose
// updates, so the total above would not be exact without Modify's atomicity.
func TestProcessesModifyNegativeControl(t *testing.T) {
	var total, lost int
	for round := 0; round < 3 && lost == 0; round++ {
		dir := t.TempDir()
		for i, r := range runModProcs(t, "naive", dir, modPer, 0) {
			if r.Errors != 0 {
				t.Fatalf("process %d: %d errors: %s", i, r.Errors, r.FirstErr)
			}
		}
		got := readTally(t, dir)
		total, lost = got.N, procs*modPer-got.N
		t.Logf("round %d: %d processes × %d Get-then-Set increments: total %d, %d updates lost; per process %v",
			round, procs, modPer, got.N, lost, got.By)
	}
	if lost == 0 {
		t.Fatalf("Get-then-Set lost no update (total %d): the processes did not race, and the Modify test proves nothing", total)
	}
}

// TestProcessesListPush: 4 OS processes × 100 List.Push on one key (a JSON array changed
// with Modify, on this driver): the list holds exactly 400 items, each process's items
// once and in its order.
func TestProcessesListPush(t *testing.T) {
	const per = 100
	dir := t.TempDir()
	start := time.Now()
	res := runModProcs(t, "push", dir, per, 0)
	elapsed := time.Since(start)
	for i, r := range res {
		if r.Errors != 0 || r.Done != per {
			t.Fatalf("process %d: %d pushes done, %d errors (%d ErrConflict): %s", i, r.Done, r.Errors, r.Conflict, r.FirstErr)
		}
	}
	c, _ := newCacheOn(t, dir)
	ctx := context.Background()
	l := cache.NewList[pushed](c, "list", time.Minute)
	n, err := l.Len(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d processes × %d List.Push in %v: length %d (want %d)", procs, per, elapsed.Round(time.Millisecond), n, procs*per)
	if n != procs*per {
		t.Fatalf("length = %d; want exactly %d", n, procs*per)
	}
	all, err := l.All(ctx)
	if err != nil {
		t.Fatal(err)
	}
	next := make([]int, procs)
	interleaved := false
	for k, it := range all {
		if it.P < 0 || it.P >= procs || it.I != next[it.P] {
			t.Fatalf("item %d is %+v: not the next item of its process", k, it)
		}
		next[it.P]++
		interleaved = interleaved || (k > 0 && all[k-1].P != it.P)
	}
	for p, m := range next {
		if m != per {
			t.Fatalf("process %d has %d items; want %d", p, m, per)
		}
	}
	if !interleaved {
		t.Logf("note: the processes' pushes did not interleave this time")
	}
}
