// Package xproc is the harness of the drivers' cross-process tests, written once for
// every driver: real OS processes, each with its own driver and cache.New on one shared
// store (a Redis, a cache directory), whose steps the test orders.
//
// Every process is the test binary run again with [Env] set to its [Job] as JSON: the
// driver's TestMain calls [Child.Main] first, which runs the job and exits, so these
// processes never run the tests. A process says what happens as JSON lines ([Msg]) on
// stdout ("ready" once its cache is connected, then events and results) and takes its
// orders ("go", "hold", "release", "stop", ...) as lines on stdin, so that the parent can
// order the steps of several processes without sharing anything but the store.
//
// The parent side is [Start], [StartN] and [Proc]; the scenarios that every driver runs
// (fencing, AutoExtend, lost locks, distributed Remember, the waiter's handoff, Once,
// Modify, List pushes) are functions of a [Target] that says how to make a fresh store
// and open a cache on it. A driver's tests stay its own: thin Test functions that call
// these, and the proofs only one driver can give (stopping a Redis, SIGKILL of a file
// lock's holder) with modes of their own ([Child.Modes]).
//
// The package may import testing: only test binaries use it.
package xproc

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/cachekit/cache"
)

// Env is the environment variable that carries a child process's job, as JSON.
const Env = "CACHEKIT_XPROC_JOB"

// Store is where the processes of one scenario meet.
type Store struct {
	Addr   string `json:"addr"`             // the driver's address: a Redis URL, a cache directory
	Prefix string `json:"prefix,omitempty"` // cache.Config.Prefix; "" for none
}

// Job is what a child process does.
type Job struct {
	Mode string `json:"mode"`
	Store
	Aux         string        `json:"aux,omitempty"` // a directory of the test's own (markers), for modes that use one
	ID          int           `json:"id"`            // the process's index among those StartN started
	N           int           `json:"n"`             // rounds, acquisitions or operations
	G           int           `json:"g"`             // goroutines
	TTL         time.Duration `json:"ttl"`
	Hold        time.Duration `json:"hold"`
	AutoExtend  bool          `json:"auto_extend"`
	Distributed bool          `json:"distributed"`
	LeakCheck   bool          `json:"leak_check"`
	DeafWatch   bool          `json:"deaf_watch"`   // the waiter never hears a release
	MaxAttempts int           `json:"max_attempts"` // ModifyOptions.MaxAttempts; 0: cache.Modify's default
}

// Msg is one line a child process writes: its kind K, and what goes with it.
type Msg struct {
	K         string          `json:"k"`
	PID       int             `json:"pid,omitempty"`
	T         int64           `json:"t,omitempty"`  // Unix nanoseconds
	T2        int64           `json:"t2,omitempty"` // Unix nanoseconds
	T3        int64           `json:"t3,omitempty"` // Unix nanoseconds
	N         int             `json:"n,omitempty"`
	Viol      int             `json:"viol,omitempty"`
	Ran       int             `json:"ran,omitempty"` // Once callers that saw Ran
	Tokens    []int64         `json:"tokens,omitempty"`
	Times     []int64         `json:"times,omitempty"`
	Attempts  []int64         `json:"attempts,omitempty"`
	Vals      map[string]int  `json:"vals,omitempty"`
	Err       string          `json:"err,omitempty"`
	Cause     string          `json:"cause,omitempty"`
	Lost      bool            `json:"lost,omitempty"`       // Lock's error matches ErrLockLost
	CauseLost bool            `json:"cause_lost,omitempty"` // fn's ctx's cause matches ErrLockLost
	Leak      string          `json:"leak,omitempty"`
	Woken     string          `json:"woken,omitempty"` // why a waiter's winning attempt ran (wait.Why's String)
	Data      json.RawMessage `json:"data,omitempty"`  // a mode's own result (Worker.Result)
}

// Child is a driver's side of the child processes.
type Child struct {
	// Open opens the child's cache for job: a driver on job.Store (wrapped so that its
	// Watch never fires for job.DeafWatch), and cache.New with job.Prefix. check, if not
	// nil, runs once the job has succeeded, and its error fails the process: the
	// problems that the driver reports aside (the file driver's OnError).
	Open func(job Job) (c *cache.Cache, check func() error, err error)
	// Modes are the driver's own jobs, beside the shared ones; they may not reuse a
	// shared mode's name.
	Modes map[string]Mode
}

// NewChild is the Child of a driver that its address alone opens (a Redis URL, a
// PostgreSQL URL), with no modes of its own: open makes the driver on job.Addr; for
// job.DeafWatch, deaf wraps it (a type of the driver's tests that embeds the driver and
// whose Watch is [DeafWatch]); cache.New puts it under name, with job.Prefix.
func NewChild[D cache.Driver](name string, open func(addr string) (D, error), deaf func(D) cache.Driver) Child {
	return Child{Open: func(job Job) (*cache.Cache, func() error, error) {
		d, err := open(job.Addr)
		if err != nil {
			return nil, nil, err
		}
		var drv cache.Driver = d
		if job.DeafWatch {
			drv = deaf(d)
		}
		c, err := cache.New(cache.Config{Drivers: map[string]cache.Driver{name: drv}, Prefix: job.Prefix})
		if err != nil {
			_ = d.Close()
			return nil, nil, err
		}
		return c, nil, nil
	}}
}

// DeafWatch is the Watch of a driver that never reports a release: its channel closes
// only when ctx ends, as if the release's message (a Redis PUBLISH, a PostgreSQL NOTIFY,
// the file driver's inotify event or stat poll) were lost, so that a lock waiter wakes
// on its backoff-and-jitter poll alone. The handoff's negative control (Job.DeafWatch).
func DeafWatch(ctx context.Context) (<-chan struct{}, error) {
	ch := make(chan struct{})
	context.AfterFunc(ctx, func() { close(ch) })
	return ch, nil
}

// Mode is a child's job: it runs once the process has said "ready".
type Mode func(ctx context.Context, w *Worker) error

// OnGo makes a Mode of f: the process waits for the order "go", then runs f, whose value
// is its result (Worker.Result; the parent reads it with Proc.Result).
func OnGo[T any](f func(ctx context.Context, w *Worker) (T, error)) Mode {
	return func(ctx context.Context, w *Worker) error {
		if err := w.Expect("go"); err != nil {
			return err
		}
		v, err := f(ctx, w)
		if err != nil {
			return err
		}
		return w.Result(v)
	}
}

// Main runs this process's job and exits with its status if this process is a child
// (Env is set), and returns otherwise. A driver's TestMain calls it before anything else.
func (ch Child) Main() {
	if raw := os.Getenv(Env); raw != "" {
		os.Exit(ch.run(raw))
	}
}

func (ch Child) run(raw string) int {
	w := &Worker{out: json.NewEncoder(os.Stdout), in: bufio.NewScanner(os.Stdin)}
	fail := func(err error) int {
		msg := fmt.Sprintf("pid %d, job %s: %v", os.Getpid(), w.Job.Mode, err)
		// On stdout for the parent's next read, on stderr for a parent that has read
		// the result already and now sees the exit status.
		w.Send(Msg{K: "error", PID: os.Getpid(), Err: msg})
		fmt.Fprintln(os.Stderr, msg)
		return 1
	}
	if err := json.Unmarshal([]byte(raw), &w.Job); err != nil {
		return fail(err)
	}
	for name := range ch.Modes {
		if _, ok := modes[name]; ok {
			return fail(fmt.Errorf("the driver's mode %q has a shared mode's name", name))
		}
	}
	mode := modes[w.Job.Mode]
	if mode == nil {
		mode = ch.Modes[w.Job.Mode]
	}
	if mode == nil {
		return fail(fmt.Errorf("unknown mode %q", w.Job.Mode))
	}
	c, check, err := ch.Open(w.Job)
	if err != nil {
		return fail(err)
	}
	defer c.Close()
	w.C = c
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// Connected before "ready": the parent's clock starts when every process is.
	if _, err := c.Has(ctx, "lx.warm"); err != nil {
		return fail(err)
	}
	w.Send(Msg{K: "ready", PID: os.Getpid()})
	if err := mode(ctx, w); err != nil {
		return fail(err)
	}
	if check != nil {
		if err := check(); err != nil {
			return fail(err)
		}
	}
	return 0
}

// Worker is a child process's end of the protocol: its job, its cache, its lines.
// Goroutines may share Send.
type Worker struct {
	Job Job
	C   *cache.Cache

	mu  sync.Mutex
	out *json.Encoder
	in  *bufio.Scanner // read on the caller's goroutine: a leak check sees no reader
}

// Send writes a line.
func (w *Worker) Send(m Msg) {
	w.mu.Lock()
	defer w.mu.Unlock()
	_ = w.out.Encode(m)
}

// Result sends a "result" line with v as its Data.
func (w *Worker) Result(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	w.Send(Msg{K: "result", PID: os.Getpid(), Data: b})
	return nil
}

// Recv reads the parent's next order.
func (w *Worker) Recv() (string, error) {
	if !w.in.Scan() {
		return "", fmt.Errorf("stdin closed (%v)", w.in.Err())
	}
	return w.in.Text(), nil
}

// Expect reads the parent's next order, which must be want.
func (w *Worker) Expect(want string) error {
	got, err := w.Recv()
	if err == nil && got != want {
		err = fmt.Errorf("got order %q; want %q", got, want)
	}
	return err
}
