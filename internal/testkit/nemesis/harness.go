package nemesis

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cachekit/cache/internal/testkit/faultproxy"
)

// Harness is the nemesis's side: the holder processes, their proxies, and the faults.
// It belongs to one test and runs on that test's goroutine.
type Harness struct {
	t     testing.TB
	job   Job // the holders' job, without Holder, Out and Routes
	dir   string
	slots []*slot
	// Targets are the store's addresses that the holders' dials go through proxies for
	// (each holder has a proxy of its own per target); none for the file driver.
	targets []string

	mu     sync.Mutex
	next   int
	procs  []*Proc
	faults map[string]int
	log    []Window
}

// Window is one fault, from when it was applied to when it was healed, in
// CLOCK_MONOTONIC ns.
type Window struct {
	Kind       string
	Start, End int64
}

// slot is one of the holders running at any time: a process and its proxies, kept for
// the process's replacement.
type slot struct {
	set *faultproxy.Set
	cur *Proc
}

// Proc is one holder process.
type Proc struct {
	Holder int
	Out    string
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stderr *buffer
	ready  chan struct{}
	done   chan struct{}
	err    error
	mu     sync.Mutex
	paused bool
}

type buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.b.Len() > 1<<20 {
		return len(p), nil
	}
	return b.b.Write(p)
}

func (b *buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// NewHarness returns the harness of a run of job's holders, whose store dials go
// through proxies for targets.
func NewHarness(t testing.TB, job Job, targets []string) *Harness {
	return &Harness{t: t, job: job, dir: t.TempDir(), targets: targets, faults: map[string]int{}}
}

// Start starts n holders and waits until each has opened its cache.
func (h *Harness) Start(n int) {
	h.t.Helper()
	for range n {
		s := &slot{}
		if len(h.targets) > 0 {
			s.set = faultproxy.NewSet()
			h.t.Cleanup(func() { _ = s.set.Close() })
			for _, tg := range h.targets {
				if _, err := s.set.Route(tg); err != nil {
					h.t.Fatal(err)
				}
			}
		}
		h.slots = append(h.slots, s)
		s.cur = h.spawn(s)
	}
	for _, s := range h.slots {
		select {
		case <-s.cur.ready:
		case <-s.cur.done:
			h.t.Fatalf("holder %d exited at start: %v; stderr:\n%s", s.cur.Holder, s.cur.err, s.cur.stderr.String())
		case <-time.After(60 * time.Second):
			h.t.Fatalf("holder %d not ready after 60s; stderr:\n%s", s.cur.Holder, s.cur.stderr.String())
		}
	}
}

// spawn starts a holder in slot s.
func (h *Harness) spawn(s *slot) *Proc {
	h.t.Helper()
	h.mu.Lock()
	h.next++
	id := h.next
	h.mu.Unlock()
	job := h.job
	job.Holder = id
	job.Out = filepath.Join(h.dir, fmt.Sprintf("holder-%03d.jsonl", id))
	if s.set != nil {
		routes := map[string]string{}
		for _, tg := range h.targets {
			a, err := s.set.Route(tg)
			if err != nil {
				h.t.Fatal(err)
			}
			routes[tg] = a
		}
		job.Routes = faultproxy.EncodeRoutes(routes)
	}
	raw, err := json.Marshal(job)
	if err != nil {
		h.t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		h.t.Fatal(err)
	}
	p := &Proc{Holder: id, Out: job.Out, cmd: exec.Command(exe, "-test.run=^$"), stderr: &buffer{}, ready: make(chan struct{}), done: make(chan struct{})}
	p.cmd.Env = append(os.Environ(), Env+"="+string(raw), "GORACE="+strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
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

func (p *Proc) signal(sig syscall.Signal) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch sig {
	case syscall.SIGSTOP:
		p.paused = true
	case syscall.SIGCONT:
		p.paused = false
	}
	_ = p.cmd.Process.Signal(sig)
}

// Fault is one kind of fault: Do applies it, waits d, and heals it.
type Fault struct {
	Kind   string
	Weight int // relative frequency; 0 counts as 1
	Do     func(d time.Duration)
}

// Run applies a random schedule of faults for dur: one at a time, each for a random
// 50–1500 ms, with a random 0–300 ms of calm between two.
func (h *Harness) Run(dur time.Duration, faults []Fault) {
	h.t.Helper()
	total := 0
	for _, f := range faults {
		total += max(f.Weight, 1)
	}
	deadline := time.Now().Add(dur)
	for time.Now().Before(deadline) {
		h.checkAlive()
		if total == 0 {
			time.Sleep(50 * time.Millisecond)
			continue
		}
		n := rand.N(total)
		var f Fault
		for _, f = range faults {
			if n -= max(f.Weight, 1); n < 0 {
				break
			}
		}
		h.Apply(f)
		time.Sleep(rand.N(300 * time.Millisecond))
	}
}

// Apply applies one fault for a random 50–1500 ms, and counts it.
func (h *Harness) Apply(f Fault) {
	d := 50*time.Millisecond + rand.N(1450*time.Millisecond)
	start := Mono()
	f.Do(d)
	h.mu.Lock()
	h.faults[f.Kind]++
	h.log = append(h.log, Window{Kind: f.Kind, Start: start, End: Mono()})
	h.mu.Unlock()
}

// checkAlive fails the test if a holder the nemesis did not kill has exited.
func (h *Harness) checkAlive() {
	h.t.Helper()
	for _, s := range h.slots {
		select {
		case <-s.cur.done:
			h.t.Fatalf("holder %d exited by itself: %v; stderr:\n%s", s.cur.Holder, s.cur.err, s.cur.stderr.String())
		default:
		}
	}
}

// Faults returns how many faults of each kind were applied.
func (h *Harness) Faults() map[string]int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return maps.Clone(h.faults)
}

// Windows returns the faults applied, in order.
func (h *Harness) Windows() []Window {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.log)
}

// FaultString formats the counts of faults by kind.
func FaultString(m map[string]int) string {
	keys := slices.Sorted(maps.Keys(m))
	parts := make([]string, len(keys))
	n := 0
	for i, k := range keys {
		parts[i] = k + " " + strconv.Itoa(m[k])
		n += m[k]
	}
	return fmt.Sprintf("%d faults (%s)", n, strings.Join(parts, ", "))
}

// slot picks a random slot.
func (h *Harness) randomSlot() *slot { return h.slots[rand.N(len(h.slots))] }

// PauseHolder is the fault "pause-holder": SIGSTOP a random holder, SIGCONT it after d.
func (h *Harness) PauseHolder() Fault {
	return Fault{Kind: "pause-holder", Weight: 3, Do: func(d time.Duration) {
		p := h.randomSlot().cur
		p.signal(syscall.SIGSTOP)
		time.Sleep(d)
		p.signal(syscall.SIGCONT)
	}}
}

// KillHolder is the fault "kill-holder": SIGKILL a random holder, and start its
// replacement (a new holder) after d.
func (h *Harness) KillHolder() Fault {
	return Fault{Kind: "kill-holder", Weight: 1, Do: func(d time.Duration) {
		s := h.randomSlot()
		p := s.cur
		_ = p.cmd.Process.Kill()
		<-p.done
		time.Sleep(d)
		s.cur = h.spawn(s)
	}}
}

// ProxyFaults are the faults of one holder's link to the store, through its proxies:
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

// Finish ends the run: every holder is resumed and its link healed, told to stop (its
// stdin closed), and waited for; a holder that does not end cleanly fails the test. It
// returns the history's sections and the holders' counts.
func (h *Harness) Finish() ([]Section, Summary) {
	h.t.Helper()
	for _, s := range h.slots {
		if s.set != nil {
			s.set.Thaw()
			s.set.Delay(0)
			s.set.Drop(false)
		}
		s.cur.signal(syscall.SIGCONT)
	}
	for _, s := range h.slots {
		_ = s.cur.stdin.Close()
	}
	for _, s := range h.slots {
		p := s.cur
		select {
		case <-p.done:
		case <-time.After(30 * time.Second):
			h.t.Fatalf("holder %d did not end 30s after it was told to; stderr:\n%s", p.Holder, p.stderr.String())
		}
		if p.err != nil {
			h.t.Fatalf("holder %d: %v; stderr:\n%s", p.Holder, p.err, p.stderr.String())
		}
	}
	h.mu.Lock()
	paths := make([]string, len(h.procs))
	for i, p := range h.procs {
		paths[i] = p.Out
	}
	h.mu.Unlock()
	secs, sum, _, err := Histories(paths)
	if err != nil {
		h.t.Fatal(err)
	}
	return secs, sum
}
