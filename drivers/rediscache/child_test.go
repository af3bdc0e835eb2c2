package rediscache_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
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
)

// The cross-process tests re-execute the test binary: with childEnv set, TestMain runs
// childMain instead of the tests. The child reads its job from the environment and
// prints one "RESULT {json}" line.
const (
	childEnv      = "REDISCACHE_TEST_CHILD" // the mode: "lock" or "naive"
	childURL      = "REDISCACHE_TEST_URL"
	childPrefix   = "REDISCACHE_TEST_PREFIX"
	childAttempts = "REDISCACHE_TEST_ATTEMPTS"
	childID       = "REDISCACHE_TEST_ID"
)

// childResult is what one process reports.
type childResult struct {
	ID       int    `json:"id"`
	PID      int    `json:"pid"`
	Acquired int    `json:"acquired"`
	Skipped  int    `json:"skipped"`
	Overlaps int    `json:"overlaps"`
	Errors   int    `json:"errors"`
	FirstErr string `json:"first_err,omitempty"`
}

// childMain is one process of the cross-process lock test: it waits for the parent's
// go signal, then makes its attempts on one lock key with its own client. Inside fn an
// overlap detector INCRs a marker, which must be 1, holds a moment and DECRs it.
//
// Mode "naive" locks with a get-then-set instead of the driver's SET NX: the negative
// control, which shows that the detector catches a lock that does not exclude.
func childMain() int {
	mode := os.Getenv(childEnv)
	attempts, _ := strconv.Atoi(os.Getenv(childAttempts))
	id, _ := strconv.Atoi(os.Getenv(childID))
	res := childResult{ID: id, PID: os.Getpid()}
	fail := func(err error) int {
		fmt.Fprintf(os.Stderr, "child %d: %v\n", id, err)
		return 1
	}
	d, err := rediscache.New(rediscache.Options{URL: os.Getenv(childURL)})
	if err != nil {
		return fail(err)
	}
	c, err := cache.New(cache.Config{Drivers: map[string]cache.Driver{"redis": d}, Prefix: os.Getenv(childPrefix)})
	if err != nil {
		return fail(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// Ready, then wait for go: every process starts its attempts at the same moment.
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
	for range attempts {
		switch mode {
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
			return fail(fmt.Errorf("unknown mode %q", mode))
		}
	}
	b, _ := json.Marshal(res)
	fmt.Printf("RESULT %s\n", b)
	return 0
}

// runProcesses starts n child processes in mode against url under prefix, releases them
// at once, and returns their results.
func runProcesses(t *testing.T, mode, url, prefix string, n, attempts int) []childResult {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	c, _ := newCache(t, url, prefix)
	ctx := context.Background()
	type proc struct {
		cmd    *exec.Cmd
		stdout bytes.Buffer
		stderr bytes.Buffer
	}
	procs := make([]*proc, n)
	for i := range procs {
		p := &proc{cmd: exec.Command(exe)}
		p.cmd.Env = append(os.Environ(),
			childEnv+"="+mode, childURL+"="+url, childPrefix+"="+prefix,
			childAttempts+"="+strconv.Itoa(attempts), childID+"="+strconv.Itoa(i))
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
	// Every process is ready (connected, started): go.
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
	results := make([]childResult, n)
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
