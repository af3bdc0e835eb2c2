package main

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
	"time"
)

func TestDemo(t *testing.T) {
	// Several rounds: the counts must not depend on how the goroutines are scheduled.
	for range 10 {
		start := time.Now()
		rep, err := runDemo(t.Context(), io.Discard)
		if err != nil {
			t.Fatalf("runDemo: %v", err)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("runDemo took %v; want well under a second", d)
		}
		if rep.CronRan != 1 || rep.CronSkipped != 4 {
			t.Errorf("cron: %d ran, %d skipped; want 1 ran, 4 skipped", rep.CronRan, rep.CronSkipped)
		}
		if rep.WebhookProcessed != 1 || rep.WebhookAcked != 19 {
			t.Errorf("webhook: %d processed, %d acked; want 1 processed, 19 acked", rep.WebhookProcessed, rep.WebhookAcked)
		}
		if !rep.WebhookRetryRan {
			t.Error("webhook: a retry after processing finished was skipped; want it to run again (the lock is released on return)")
		}
		if rep.ReportOwnerSeen != "worker.reports-1" {
			t.Errorf("report: owner read with Get = %q; want %q", rep.ReportOwnerSeen, "worker.reports-1")
		}
		if !rep.ReportSkipped {
			t.Error("report: the second worker acquired the held lock")
		}
		if !rep.ReportReleased {
			t.Error("report: the lock is still held after LockWith returned")
		}
		if rep.LoaderRuns != 1 {
			t.Errorf("remember: loader ran %d times; want 1", rep.LoaderRuns)
		}
		if rep.RememberSameValue != rep.RememberCallers {
			t.Errorf("remember: %d of %d callers got the loaded value; want all", rep.RememberSameValue, rep.RememberCallers)
		}
	}
}

func TestRun(t *testing.T) {
	cases := []struct {
		name        string
		args        []string
		code        int
		stdout      string // a substring of stdout
		stderr      string // a substring of stderr
		emptyStdout bool
	}{
		{name: "demo", args: []string{"demo"}, code: 0, stdout: "=> 1 ran, 4 skipped"},
		{name: "no command", args: nil, code: 2, stderr: "usage: cachectl", emptyStdout: true},
		{name: "unknown command", args: []string{"frobnicate"}, code: 2, stderr: `unknown command "frobnicate"`, emptyStdout: true},
		{name: "unknown flag", args: []string{"-x"}, code: 2, stderr: "usage: cachectl", emptyStdout: true},
		{name: "demo extra argument", args: []string{"demo", "now"}, code: 2, stderr: "usage: cachectl demo", emptyStdout: true},
		{name: "help", args: []string{"help"}, code: 0, stdout: "usage: cachectl"},
		{name: "-h", args: []string{"-h"}, code: 0, stderr: "usage: cachectl", emptyStdout: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := run(tc.args, &stdout, &stderr); code != tc.code {
				t.Errorf("run(%q) = %d; want %d\nstderr: %s", tc.args, code, tc.code, stderr.String())
			}
			if !strings.Contains(stdout.String(), tc.stdout) {
				t.Errorf("run(%q) stdout = %q; want it to contain %q", tc.args, stdout.String(), tc.stdout)
			}
			if !strings.Contains(stderr.String(), tc.stderr) {
				t.Errorf("run(%q) stderr = %q; want it to contain %q", tc.args, stderr.String(), tc.stderr)
			}
			if tc.emptyStdout && stdout.Len() > 0 {
				t.Errorf("run(%q) wrote %q to stdout; want nothing", tc.args, stdout.String())
			}
		})
	}
}

func TestDemoCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	// A cancelled context must end the demo with an error or let it finish, never hang.
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = runDemo(ctx, io.Discard)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("runDemo with a cancelled context did not return")
	}
}
