package xproc

import (
	"bufio"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cachekit/cache/internal/testkit/testproc"
)

// Proc is a running child process.
type Proc struct {
	t      *testing.T
	job    Job
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan string
	stderr *testproc.Stderr
	done   chan struct{} // closed when the process has exited
	err    error         // its exit, once done is closed
}

// Start starts a child process on job; it is killed at the end of the test if it is
// still running. It returns at once: the process says "ready" once its cache is
// connected (Next("ready")).
func Start(t *testing.T, job Job) *Proc {
	t.Helper()
	raw, err := json.Marshal(job)
	if err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	p := &Proc{t: t, job: job, cmd: exec.Command(exe, "-test.run=^$"), lines: make(chan string, 1024), stderr: &testproc.Stderr{}, done: make(chan struct{})}
	// The race runtime sleeps a second at exit by default: not needed by processes that
	// have closed everything they started.
	p.cmd.Env = append(os.Environ(), Env+"="+string(raw), "GORACE="+strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
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

// StartN starts n processes on job, with IDs 0 … n-1, all ready when it returns.
func StartN(t *testing.T, n int, job Job) []*Proc {
	t.Helper()
	ps := make([]*Proc, n)
	for i := range ps {
		job.ID = i
		ps[i] = Start(t, job)
	}
	for _, p := range ps {
		p.Next("ready")
	}
	return ps
}

// Go gives each process the order "go".
func Go(ps []*Proc) {
	for _, p := range ps {
		p.t.Helper()
		p.Send("go")
	}
}

// Pid is the process's id.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Next reads the process's next line, which must be of kind k. A line of kind "error"
// (the child's job failed) fails the test.
func (p *Proc) Next(k string) Msg {
	p.t.Helper()
	var line string
	select {
	case l, ok := <-p.lines:
		if !ok {
			<-p.done
			p.t.Fatalf("pid %d (%s) ended (%v) without a %q line; stderr:\n%s", p.Pid(), p.job.Mode, p.err, k, p.stderr.String())
		}
		line = l
	case <-time.After(90 * time.Second):
		p.t.Fatalf("pid %d (%s): no %q line after 90s; stderr:\n%s", p.Pid(), p.job.Mode, k, p.stderr.String())
	}
	var m Msg
	if err := json.Unmarshal([]byte(line), &m); err != nil {
		p.t.Fatalf("pid %d (%s): line %q: %v", p.Pid(), p.job.Mode, line, err)
	}
	if m.K == "error" {
		p.t.Fatalf("child failed: %s; stderr:\n%s", m.Err, p.stderr.String())
	}
	if m.K != k {
		p.t.Fatalf("pid %d (%s): got a %q line; want %q: %s", p.Pid(), p.job.Mode, m.K, k, line)
	}
	return m
}

// Result reads the process's "result" line into v (its Data, see Worker.Result), then
// waits for the process to exit cleanly.
func (p *Proc) Result(v any) {
	p.t.Helper()
	m := p.Next("result")
	if err := json.Unmarshal(m.Data, v); err != nil {
		p.t.Fatalf("pid %d (%s): result %s: %v", p.Pid(), p.job.Mode, m.Data, err)
	}
	p.Exit()
}

// Send gives the process an order. An order to a process that has ended fails the test
// with the process's exit and stderr: the write's own error ("file already closed",
// as exec closes the pipe once the process is gone) would hide why it ended.
func (p *Proc) Send(order string) {
	p.t.Helper()
	if _, err := io.WriteString(p.stdin, order+"\n"); err != nil {
		select {
		case <-p.done:
			p.t.Fatalf("pid %d (%s): order %q: the process has ended (%v); stderr:\n%s", p.Pid(), p.job.Mode, order, p.err, p.stderr.String())
		case <-time.After(90 * time.Second): // a hang detector: the pipe broke, the process lives on
			p.t.Fatalf("pid %d (%s): order %q: %v", p.Pid(), p.job.Mode, order, err)
		}
	}
}

// Exit waits for the process to end and fails the test unless it ended cleanly.
func (p *Proc) Exit() {
	p.t.Helper()
	select {
	case <-p.done:
	case <-time.After(90 * time.Second):
		p.t.Fatalf("pid %d (%s) did not exit", p.Pid(), p.job.Mode)
	}
	if p.err != nil {
		p.t.Fatalf("pid %d (%s): %v; stderr:\n%s", p.Pid(), p.job.Mode, p.err, p.stderr.String())
	}
}

// Kill kills the process with SIGKILL and waits until it is gone.
func (p *Proc) Kill() {
	p.t.Helper()
	if err := p.cmd.Process.Kill(); err != nil {
		p.t.Fatal(err)
	}
	<-p.done
}

// Time is a time in Unix nanoseconds, as Msg has them.
func Time(ns int64) time.Time { return time.Unix(0, ns) }

// Stats returns the median, p90 and max of ds, which it sorts.
func Stats(ds []time.Duration) (median, p90, maxd time.Duration) {
	slices.Sort(ds)
	return ds[len(ds)/2], ds[len(ds)*9/10], ds[len(ds)-1]
}
