package linearize

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
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cachekit/cache/internal/testkit/faultproxy"
	"github.com/cachekit/cache/internal/testkit/nemesis"
)

// Harness runs client processes on a store and breaks things around them. It belongs
// to one test and runs on that test's goroutine.
type Harness struct {
	t       testing.TB
	job     Job // the clients' job, without Client, Out and Routes
	dir     string
	slots   []*slot
	targets []string // the store's addresses that the clients dial through proxies

	mu     sync.Mutex
	next   int
	procs  []*proc
	faults map[string]int
}

// slot is one of the clients running at any time: a process and its proxies, kept for
// the process's replacement.
type slot struct {
	set *faultproxy.Set
	cur *proc
}

// proc is one client process.
type proc struct {
	client int
	out    string
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stderr *buffer
	ready  chan struct{}
	done   chan struct{}
	err    error
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

// NewHarness returns the harness of a run of job's clients, whose store dials go through
// proxies for targets (none for the file driver).
func NewHarness(t testing.TB, job Job, targets []string) *Harness {
	if job.Base == 0 {
		job.Base = nemesis.Mono()
	}
	return &Harness{t: t, job: job, dir: t.TempDir(), targets: targets, faults: map[string]int{}}
}

// Start starts n clients and waits until each has opened its cache.
func (h *Harness) Start(n int) {
	h.t.Helper()
	for range n {
		s := &slot{}
		if len(h.targets) > 0 {
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
		h.t.Fatalf("client %d exited at start: %v; stderr:\n%s", p.client, p.err, p.stderr.String())
	case <-time.After(60 * time.Second): // a hang detector: a start takes milliseconds
		h.t.Fatalf("client %d not ready after 60s; stderr:\n%s", p.client, p.stderr.String())
	}
}

// spawn starts a client process in slot s.
func (h *Harness) spawn(s *slot) *proc {
	h.t.Helper()
	h.mu.Lock()
	h.next++
	id := h.next
	h.mu.Unlock()
	job := h.job
	job.Client = id
	job.Out = filepath.Join(h.dir, fmt.Sprintf("client-%03d.jsonl", id))
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
	p := &proc{client: id, out: job.Out, cmd: exec.Command(exe, "-test.run=^$"), stderr: &buffer{}, ready: make(chan struct{}), done: make(chan struct{})}
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

// Run applies a random schedule of faults for dur: one at a time, each for a random
// 50–1500 ms, with a random 0–300 ms of calm between two.
func (h *Harness) Run(dur time.Duration, faults []nemesis.Fault) {
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
		var f nemesis.Fault
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
func (h *Harness) Apply(f nemesis.Fault) {
	f.Do(50*time.Millisecond + rand.N(1450*time.Millisecond))
	h.mu.Lock()
	h.faults[f.Kind]++
	h.mu.Unlock()
}

// checkAlive fails the test if a client the harness did not kill has exited.
func (h *Harness) checkAlive() {
	h.t.Helper()
	for _, s := range h.slots {
		select {
		case <-s.cur.done:
			h.t.Fatalf("client %d exited by itself: %v; stderr:\n%s", s.cur.client, s.cur.err, s.cur.stderr.String())
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

func (h *Harness) randomSlot() *slot { return h.slots[rand.N(len(h.slots))] }

// PauseClient is the fault "pause-client": SIGSTOP a random client, SIGCONT it after d.
func (h *Harness) PauseClient() nemesis.Fault {
	return nemesis.Fault{Kind: "pause-client", Weight: 3, Do: func(d time.Duration) {
		p := h.randomSlot().cur
		_ = p.cmd.Process.Signal(syscall.SIGSTOP)
		time.Sleep(d)
		_ = p.cmd.Process.Signal(syscall.SIGCONT)
	}}
}

// KillClient is the fault "kill-client": SIGKILL a random client, and start its
// replacement (a new client) after d. The operation it was running, if any, is of
// unknown outcome.
func (h *Harness) KillClient() nemesis.Fault {
	return nemesis.Fault{Kind: "kill-client", Weight: 1, Do: func(d time.Duration) {
		s := h.randomSlot()
		p := s.cur
		_ = p.cmd.Process.Kill()
		<-p.done
		time.Sleep(d)
		s.cur = h.spawn(s)
		h.waitReady(s.cur)
	}}
}

// ProxyFaults are the faults of one client's link to the store, through its proxies:
// "freeze" (a partition: bytes held, nothing closed), "delay" (a slow link, 50–300 ms
// each way), "reset" (every open connection torn down with RST) and "drop" (a black
// hole that also kills new dials).
func (h *Harness) ProxyFaults() []nemesis.Fault {
	return []nemesis.Fault{
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

// Finish ends the run: every client is resumed and its link healed, told to stop (its
// stdin closed), and waited for; a client that does not end cleanly fails the test. It
// returns every client's records, killed clients' included.
func (h *Harness) Finish() []Record {
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
		case <-time.After(60 * time.Second): // a hang detector: an operation takes at most seconds
			h.t.Fatalf("client %d did not end 60s after it was told to; stderr:\n%s", p.client, p.stderr.String())
		}
		if p.err != nil {
			h.t.Fatalf("client %d: %v; stderr:\n%s", p.client, p.err, p.stderr.String())
		}
	}
	h.mu.Lock()
	paths := make([]string, len(h.procs))
	for i, p := range h.procs {
		paths[i] = p.out
	}
	h.mu.Unlock()
	recs, err := ReadHistories(paths)
	if err != nil {
		h.t.Fatal(err)
	}
	return recs
}
