package faultrun

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cachekit/cache/internal/testkit/faultproxy"
	"github.com/cachekit/cache/internal/testkit/testproc"
)

// Config is what a [Harness] needs to know of a suite's children.
type Config struct {
	// Role is what a child is called: in the test's messages ("holder 3 exited at
	// start"), in the kinds of the faults on children ("pause-holder", "kill-holder")
	// and in the names of the history files (holder-003.jsonl).
	Role string
	// Env is the environment variable that carries a child's job, as JSON.
	Env string
	// Targets are the store's addresses that the children dial through proxies (each
	// child has a proxy of its own per target); none for the file driver.
	Targets []string
	// Job returns the job of child id (1, 2, ...: a replacement is a new child), which
	// writes its history to out and dials through routes (faultproxy.EncodeRoutes; ""
	// without targets). It is marshalled to JSON.
	Job func(id int, out, routes string) any
	// FinishTimeout is how long [Harness.Finish] waits for a child told to stop: a hang
	// detector.
	FinishTimeout time.Duration
	// WaitReplacement makes the fault [Harness.KillFault] wait until the replacement of
	// a killed child has opened its cache before it returns.
	WaitReplacement bool
}

// Harness runs a suite's child processes and breaks things around them. It belongs to
// one test and runs on that test's goroutine.
type Harness struct {
	Schedule // the faults applied

	t     testing.TB
	cfg   Config
	dir   string
	slots []*slot

	mu    sync.Mutex
	next  int
	procs []*proc
}

// slot is one of the children running at any time: a process and its proxies, kept for
// the process's replacement.
type slot struct {
	set *faultproxy.Set
	cur *proc
}

// proc is one child process.
type proc struct {
	id     int
	out    string
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stderr *testproc.Stderr
	ready  chan struct{}
	done   chan struct{}
	err    error
}

// NewHarness returns the harness of a run of cfg's children.
func NewHarness(t testing.TB, cfg Config) *Harness {
	return &Harness{t: t, cfg: cfg, dir: t.TempDir()}
}

// Start starts n children and waits until each has opened its cache.
func (h *Harness) Start(n int) {
	h.t.Helper()
	for range n {
		s := &slot{}
		if len(h.cfg.Targets) > 0 {
			s.set = faultproxy.NewSet()
			h.t.Cleanup(func() { _ = s.set.Close() })
		}
		h.slots = append(h.slots, s)
		s.cur = h.spawn(s)
	}
	for _, s := range h.slots {
		h.waitReady(s.cur)
	}
}

// waitReady waits until p has opened its cache.
func (h *Harness) waitReady(p *proc) {
	h.t.Helper()
	select {
	case <-p.ready:
	case <-p.done:
		h.t.Fatalf("%s %d exited at start: %v; stderr:\n%s", h.cfg.Role, p.id, p.err, p.stderr.String())
	case <-time.After(60 * time.Second): // a hang detector: a start takes milliseconds
		h.t.Fatalf("%s %d not ready after 60s; stderr:\n%s", h.cfg.Role, p.id, p.stderr.String())
	}
}

// spawn starts a child process in slot s.
func (h *Harness) spawn(s *slot) *proc {
	h.t.Helper()
	h.mu.Lock()
	h.next++
	id := h.next
	h.mu.Unlock()
	out := filepath.Join(h.dir, fmt.Sprintf("%s-%03d.jsonl", h.cfg.Role, id))
	routes := ""
	if s.set != nil {
		m := map[string]string{}
		for _, tg := range h.cfg.Targets {
			a, err := s.set.Route(tg)
			if err != nil {
				h.t.Fatal(err)
			}
			m[tg] = a
		}
		routes = faultproxy.EncodeRoutes(m)
	}
	raw, err := json.Marshal(h.cfg.Job(id, out, routes))
	if err != nil {
		h.t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		h.t.Fatal(err)
	}
	p := &proc{id: id, out: out, cmd: exec.Command(exe, "-test.run=^$"), stderr: &testproc.Stderr{}, ready: make(chan struct{}), done: make(chan struct{})}
	// The race runtime sleeps a second at exit by default: not needed by a child that
	// has closed everything it started.
	p.cmd.Env = append(os.Environ(), h.cfg.Env+"="+string(raw), "GORACE="+strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	p.cmd.Stderr = p.stderr
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // gone with the test binary
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		h.t.Fatal(err)
	}
	if p.stdin, err = p.cmd.StdinPipe(); err != nil {
		h.t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		h.t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if sc.Text() == "ready" {
				close(p.ready)
			}
		}
		p.err = p.cmd.Wait() // after the last read of stdout, as exec requires
		close(p.done)
	}()
	h.t.Cleanup(func() {
		_ = p.cmd.Process.Signal(syscall.SIGCONT)
		_ = p.cmd.Process.Kill()
		_ = p.stdin.Close()
		<-p.done
	})
	h.mu.Lock()
	h.procs = append(h.procs, p)
	h.mu.Unlock()
	return p
}

// Run applies a random schedule of faults for dur, as [Schedule.Run], and fails the
// test if a child the harness did not kill has exited.
func (h *Harness) Run(dur time.Duration, faults []Fault) {
	h.t.Helper()
	h.Schedule.Run(dur, faults, h.checkAlive)
}

// checkAlive fails the test if a child the harness did not kill has exited.
func (h *Harness) checkAlive() {
	h.t.Helper()
	for _, s := range h.slots {
		select {
		case <-s.cur.done:
			h.t.Fatalf("%s %d exited by itself: %v; stderr:\n%s", h.cfg.Role, s.cur.id, s.cur.err, s.cur.stderr.String())
		default:
		}
	}
}

func (h *Harness) randomSlot() *slot { return h.slots[rand.N(len(h.slots))] }

// PauseFault is the fault "pause-<role>": SIGSTOP a random child, SIGCONT it after d.
func (h *Harness) PauseFault() Fault {
	return Fault{Kind: "pause-" + h.cfg.Role, Weight: 3, Do: func(d time.Duration) {
		p := h.randomSlot().cur
		_ = p.cmd.Process.Signal(syscall.SIGSTOP)
		time.Sleep(d)
		_ = p.cmd.Process.Signal(syscall.SIGCONT)
	}}
}

// KillFault is the fault "kill-<role>": SIGKILL a random child, and start its
// replacement (a new child) after d; with Config.WaitReplacement, wait until the
// replacement is ready.
func (h *Harness) KillFault() Fault {
	return Fault{Kind: "kill-" + h.cfg.Role, Weight: 1, Do: func(d time.Duration) {
		s := h.randomSlot()
		p := s.cur
		_ = p.cmd.Process.Kill()
		<-p.done
		time.Sleep(d)
		s.cur = h.spawn(s)
		if h.cfg.WaitReplacement {
			h.waitReady(s.cur)
		}
	}}
}

// ProxyFaults are the faults of one child's link to the store, through its proxies:
// "freeze" (a partition: bytes held, nothing closed), "delay" (a slow link, 50–300 ms
// each way), "reset" (every open connection torn down with RST) and "drop" (a black
// hole that also kills new dials).
func (h *Harness) ProxyFaults() []Fault {
	return []Fault{
		{Kind: "freeze", Weight: 3, Do: func(d time.Duration) {
			set := h.randomSlot().set
			set.Freeze()
			time.Sleep(d)
			set.Thaw()
		}},
		{Kind: "delay", Weight: 3, Do: func(d time.Duration) {
			set := h.randomSlot().set
			set.Delay(50*time.Millisecond + rand.N(250*time.Millisecond))
			time.Sleep(d)
			set.Delay(0)
		}},
		{Kind: "reset", Weight: 2, Do: func(time.Duration) {
			h.randomSlot().set.Reset()
		}},
		{Kind: "drop", Weight: 1, Do: func(d time.Duration) {
			set := h.randomSlot().set
			set.Drop(true)
			time.Sleep(d)
			set.Drop(false)
		}},
	}
}

// Finish ends the run: every child is resumed and its link healed, told to stop (its
// stdin closed), and waited for; a child that does not end cleanly fails the test. It
// returns the paths of every child's history file, killed children's included, in the
// order the children started (a child killed before it created its file has none).
func (h *Harness) Finish() []string {
	h.t.Helper()
	for _, s := range h.slots {
		if s.set != nil {
			s.set.Thaw()
			s.set.Delay(0)
			s.set.Drop(false)
		}
		_ = s.cur.cmd.Process.Signal(syscall.SIGCONT)
	}
	for _, s := range h.slots {
		_ = s.cur.stdin.Close()
	}
	for _, s := range h.slots {
		p := s.cur
		select {
		case <-p.done:
		case <-time.After(h.cfg.FinishTimeout):
			h.t.Fatalf("%s %d did not end %v after it was told to; stderr:\n%s", h.cfg.Role, p.id, h.cfg.FinishTimeout, p.stderr.String())
		}
		if p.err != nil {
			h.t.Fatalf("%s %d: %v; stderr:\n%s", h.cfg.Role, p.id, p.err, p.stderr.String())
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	paths := make([]string, len(h.procs))
	for i, p := range h.procs {
		paths[i] = p.out
	}
	return paths
}
