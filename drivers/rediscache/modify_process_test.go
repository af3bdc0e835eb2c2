package rediscache_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cachekit/cache"
	"github.com/cachekit/cache/drivers/rediscache"
	"github.com/cachekit/cache/internal/redistest"
)

// Cross-process proofs of cache.Modify (the Update) and of native List pushes:
// the test binary re-executes itself with modChildEnv set, and init below runs the job
// and exits before TestMain, so these processes never run the tests.
const (
	modChildEnv  = "REDISCACHE_MODIFY_CHILD" // the mode: "modify", "naive" or "push"
	modURLEnv    = "REDISCACHE_MODIFY_URL"
	modPrefixEnv = "REDISCACHE_MODIFY_PREFIX"
	modCountEnv  = "REDISCACHE_MODIFY_N"
	modIDEnv     = "REDISCACHE_MODIFY_ID"
	modMaxEnv    = "REDISCACHE_MODIFY_MAX" // ModifyOptions.MaxAttempts; 0: cache.Modify's default
)

func init() {
	if mode := os.Getenv(modChildEnv); mode != "" {
		os.Exit(modChildMain(mode))
	}
}

// tally is the value the processes increment: a struct with a map, which a
// compare-and-swap by Go's == could not handle, as JSON in Redis.
type tally struct {
	N  int            `json:"n"`
	By map[string]int `json:"by"` // increments per process
}

// modResult is what one process reports.
type modResult struct {
	ID       int    `json:"id"`
	PID      int    `json:"pid"`
	Done     int    `json:"done"`      // operations that returned without error
	Calls    int    `json:"calls"`     // calls of the Modify fn (Done + CAS retries)
	MaxCalls int    `json:"max_calls"` // the most fn calls one Modify needed
	Errors   int    `json:"errors"`
	Conflict int    `json:"conflict"` // errors that match cache.ErrConflict
	FirstErr string `json:"first_err,omitempty"`
}

// item is what the push processes append: who pushed it and its rank in that process.
type item struct {
	P int `json:"p"`
	I int `json:"i"`
}

func modChildMain(mode string) int {
	n, _ := strconv.Atoi(os.Getenv(modCountEnv))
	id, _ := strconv.Atoi(os.Getenv(modIDEnv))
	maxAttempts, _ := strconv.Atoi(os.Getenv(modMaxEnv))
	fail := func(err error) int {
		fmt.Fprintf(os.Stderr, "child %d (%s): %v\n", id, mode, err)
		return 1
	}
	d, err := rediscache.New(rediscache.Options{URL: os.Getenv(modURLEnv)})
	if err != nil {
		return fail(err)
	}
	c, err := cache.New(cache.Config{Drivers: map[string]cache.Driver{"redis": d}, Prefix: os.Getenv(modPrefixEnv)})
	if err != nil {
		return fail(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// Ready, then wait for go: every process starts at the same moment.
	if _, err := c.Increment(ctx, "ready", 1); err != nil {
		return fail(err)
	}
	for {
		ok, err := c.Has(ctx, "go")
		if err != nil {
			return fail(err)
		}
		if ok {
			break
		}
		time.Sleep(time.Millisecond)
	}

	res := modResult{ID: id, PID: os.Getpid()}
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
	list := cache.NewList[item](c, "list", time.Minute)
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
			if _, err := list.Push(ctx, item{P: id, I: i}); err != nil {
				note(err)
				continue
			}
		default:
			return fail(fmt.Errorf("unknown mode %q", mode))
		}
		res.Done++
	}
	b, _ := json.Marshal(res)
	fmt.Printf("RESULT %s\n", b)
	return 0
}

// runModProcesses starts n processes in mode against url under prefix, each doing count
// operations, releases them at once, and returns their results.
func runModProcesses(t *testing.T, mode, url, prefix string, n, count, maxAttempts int) []modResult {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	c, _ := newCache(t, url, prefix)
	ctx := context.Background()
	type proc struct {
		cmd            *exec.Cmd
		stdout, stderr bytes.Buffer
	}
	procs := make([]*proc, n)
	for i := range procs {
		p := &proc{cmd: exec.Command(exe, "-test.run=^$")}
		p.cmd.Env = append(os.Environ(),
			modChildEnv+"="+mode, modURLEnv+"="+url, modPrefixEnv+"="+prefix,
			modCountEnv+"="+strconv.Itoa(count), modIDEnv+"="+strconv.Itoa(i), modMaxEnv+"="+strconv.Itoa(maxAttempts),
			// The race detector sleeps 1 s at exit by default: not here, where every run starts 4.
			"GORACE="+strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
		p.cmd.Stdout, p.cmd.Stderr = &p.stdout, &p.stderr
		if err := p.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		procs[i] = p
	}
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i, p := range procs {
		wg.Go(func() { errs[i] = p.cmd.Wait() })
	}
	t.Cleanup(func() {
		for _, p := range procs {
			_ = p.cmd.Process.Kill()
		}
		wg.Wait()
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		var ready int
		if _, err := c.Get(ctx, "ready", &ready); err != nil {
			t.Fatal(err)
		}
		if ready == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d processes ready after 30s", ready, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := c.Set(ctx, "go", 1, time.Minute); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	results := make([]modResult, n)
	for i, p := range procs {
		if errs[i] != nil {
			t.Fatalf("process %d: %v\nstderr: %s", i, errs[i], p.stderr.String())
		}
		found := false
		sc := bufio.NewScanner(&p.stdout)
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

const modProcs, modPer = 4, 250

// readTally reads the final tally under prefix with a fresh client.
func readTally(t *testing.T, url, prefix string) tally {
	t.Helper()
	c, _ := newCache(t, url, prefix)
	var got tally
	if found, err := c.Get(context.Background(), "tally", &got); !found || err != nil {
		t.Fatalf("Get(tally) = %v, %v", found, err)
	}
	return got
}

// TestProcessesModify: 4 OS processes, each with its own client, run 250 cache.Modify
// increments each on one key holding a struct counter.
//
//   - "exact": with MaxAttempts 1000, every call succeeds and the total is exactly 1000,
//     each process's own count exactly 250. The CAS retries (fn runs beyond one per
//     call) show that the processes contended.
//   - "default": plain cache.Modify, whose 10 attempts can run out under this
//     contention: a call that runs out returns ErrConflict and must have changed
//     nothing, so the total is exactly the number of calls that succeeded.
func TestProcessesModify(t *testing.T) {
	forTargets(t, func(t *testing.T, url string) {
		for _, v := range []struct {
			name        string
			maxAttempts int
		}{{"exact", 1000}, {"default", 0}} {
			t.Run(v.name, func(t *testing.T) {
				prefix := scope("xmodify")
				start := time.Now()
				res := runModProcesses(t, "modify", url, prefix, modProcs, modPer, v.maxAttempts)
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
				got := readTally(t, url, prefix)
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
	})
}

// TestProcessesModifyNegativeControl: the same processes with a plain Get-then-Set lose
// updates, so the total above would not be exact without Modify's atomicity.
func TestProcessesModifyNegativeControl(t *testing.T) {
	url := redistest.URL(t)
	var total, lost int
	for round := 0; round < 3 && lost == 0; round++ {
		prefix := scope("xnaive")
		res := runModProcesses(t, "naive", url, prefix, modProcs, modPer, 0)
		for _, r := range res {
			if r.Errors != 0 {
				t.Fatalf("process %d: %d errors: %s", r.ID, r.Errors, r.FirstErr)
			}
		}
		got := readTally(t, url, prefix)
		total, lost = got.N, modProcs*modPer-got.N
		t.Logf("round %d: %d processes × %d Get-then-Set increments: total %d, %d updates lost; per process %v",
			round, modProcs, modPer, got.N, lost, got.By)
	}
	if lost == 0 {
		t.Fatalf("Get-then-Set lost no update (total %d): the processes did not race, and the Modify test proves nothing", total)
	}
}

// TestProcessesListPush: 4 OS processes × 100 List.Push on one key: the list (a native
// Redis list) holds exactly 400 items, each process's items once and in its order.
func TestProcessesListPush(t *testing.T) {
	const per = 100
	forTargets(t, func(t *testing.T, url string) {
		ctx := context.Background()
		prefix := scope("xpush")
		start := time.Now()
		res := runModProcesses(t, "push", url, prefix, modProcs, per, 0)
		elapsed := time.Since(start)
		for _, r := range res {
			if r.Errors != 0 || r.Done != per {
				t.Fatalf("process %d: %d pushes done, %d errors: %s", r.ID, r.Done, r.Errors, r.FirstErr)
			}
		}
		c, d := newCache(t, url, prefix)
		if typ := d.Client().Type(ctx, prefix+".list").Val(); typ != "list" {
			t.Fatalf("TYPE of the list's key = %q; want a native Redis list", typ)
		}
		l := cache.NewList[item](c, "list", time.Minute)
		n, err := l.Len(ctx)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%d processes × %d List.Push in %v: length %d (want %d)", modProcs, per, elapsed.Round(time.Millisecond), n, modProcs*per)
		if n != modProcs*per {
			t.Fatalf("length = %d; want exactly %d", n, modProcs*per)
		}
		all, err := l.All(ctx)
		if err != nil {
			t.Fatal(err)
		}
		checkPushed(t, all, modProcs, per)
		if ms := d.Client().PTTL(ctx, prefix+".list").Val(); ms <= 0 || ms > time.Minute {
			t.Fatalf("the list's PTTL = %v; want the List's 1m, set once", ms)
		}
	})
}

// checkPushed: every process's items 0 … per-1 appear once, in order.
func checkPushed(t *testing.T, all []item, procs, per int) {
	t.Helper()
	next := make([]int, procs)
	interleaved := false
	for k, it := range all {
		if it.P < 0 || it.P >= procs || it.I != next[it.P] {
			t.Fatalf("item %d is %+v; process %d's next item should be %d", k, it, it.P, next[max(0, min(it.P, procs-1))])
		}
		next[it.P]++
		if k > 0 && all[k-1].P != it.P {
			interleaved = true
		}
	}
	for p, n := range next {
		if n != per {
			t.Fatal(errors.New(fmt.Sprint("process ", p, " has ", n, " items; want ", per)))
		}
	}
	if !interleaved {
		t.Logf("note: the processes' pushes did not interleave this time")
	}
}
