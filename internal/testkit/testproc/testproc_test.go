package testproc

import (
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestWaitReady: a process that becomes ready, one that exits first, and one that is
// never ready in time.
func TestWaitReady(t *testing.T) {
	start := func(args ...string) *Proc {
		t.Helper()
		p, err := Start(exec.Command(args[0], args[1:]...))
		if err != nil {
			t.Skipf("%s: %v", args[0], err)
		}
		t.Cleanup(func() { _ = p.Cmd.Process.Kill(); <-p.Done })
		return p
	}
	calls := 0
	p := start("sleep", "60")
	if err := p.WaitReady(func() error {
		if calls++; calls < 3 {
			return errors.New("not yet")
		}
		return nil
	}, time.Millisecond, time.Minute, "never ready"); err != nil || calls != 3 {
		t.Errorf("ready at the third call: %v after %d calls", err, calls)
	}
	p = start("true")
	notYet := func() error { return errors.New("not yet") }
	if err := p.WaitReady(notYet, time.Millisecond, time.Minute, "never ready"); err == nil || !strings.Contains(err.Error(), "exited at start") {
		t.Errorf("a process that exits: %v; want exited at start", err)
	}
	p = start("sleep", "60")
	if err := p.WaitReady(notYet, time.Millisecond, 20*time.Millisecond, "never ready"); err == nil || err.Error() != "never ready" {
		t.Errorf("a process never ready: %v; want never ready", err)
	}
}

// TestShared: a shared server starts once, and Started sees it only after Get.
func TestShared(t *testing.T) {
	var sh Shared
	n := 0
	start := func() *Server { n++; return &Server{URL: "x://1", Kind: "k"} }
	if sh.Started("a") != nil {
		t.Fatal("Started before Get")
	}
	if u := sh.Get("a", start).Use(t, "test"); u != "x://1" || sh.Get("a", start).URL != u || n != 1 || sh.Started("a").Kind != "k" {
		t.Fatalf("Get: %q, %d starts", u, n)
	}
}
