package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// hangAfter bounds the tests' waits for something that takes milliseconds (a command
// taking a lock, a holder noticing a release): a hang detector, not a latency bound,
// that only a hang reaches however busy the machine is. BenchmarkDemo measures how long
// the demo takes.
const hangAfter = time.Minute

func TestDemo(t *testing.T) {
	// Several rounds: the counts must not depend on how the goroutines are scheduled.
	for range 10 {
		start := time.Now()
		rep, err := runDemo(t.Context(), io.Discard)
		if err != nil {
			t.Fatalf("runDemo: %v", err)
		}
		t.Logf("runDemo took %v", time.Since(start))
		if rep.CronRan != 1 || rep.CronSkipped != 4 {
			t.Errorf("cron: %d ran, %d skipped; want 1 ran, 4 skipped", rep.CronRan, rep.CronSkipped)
		}
		if rep.WebhookProcessed != 1 || rep.WebhookAcked != 19 {
			t.Errorf("webhook: %d processed, %d acked; want 1 processed, 19 acked", rep.WebhookProcessed, rep.WebhookAcked)
		}
		if !rep.WebhookRetryRan {
			t.Error("webhook: a retry after processing finished was skipped; want it to run again (the lock is released on return)")
		}
		if rep.OnceRuns != 1 || rep.OnceRan != 1 || rep.OnceSameValue != 20 {
			t.Errorf("once: handler ran %d times, %d calls ran it, %d of 20 got its result; want 1, 1, 20", rep.OnceRuns, rep.OnceRan, rep.OnceSameValue)
		}
		if !rep.OnceRetrySkips {
			t.Error("once: a retry after processing finished ran again or lost the result; want the remembered result")
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
		{name: "--help", args: []string{"--help"}, code: 0, stderr: "usage: cachectl", emptyStdout: true},
		{name: "help of a command", args: []string{"help", "unlock"}, code: 0, stdout: "  --force "},
		{name: "help demo", args: []string{"help", "demo"}, code: 0, stdout: "usage: cachectl demo"},
		{name: "help help", args: []string{"help", "help"}, code: 0, stdout: "usage: cachectl help"},
		{name: "help of an unknown topic", args: []string{"help", "nope"}, code: 2,
			stderr: "unknown topic \"nope\"\ntopics: del, demo, doctor, get, help, keys, lock, locks, set, stats, ttl, unlock\n", emptyStdout: true},
		{name: "help of a mistyped topic", args: []string{"help", "unlcok"}, code: 2, stderr: `(did you mean "unlock"?)`, emptyStdout: true},
		{name: "help of two topics", args: []string{"help", "get", "set"}, code: 2, stderr: "topics: ", emptyStdout: true},
		{name: "mistyped command", args: []string{"lokc"}, code: 2, stderr: `unknown command "lokc" (did you mean "lock"?)`, emptyStdout: true},
		{name: "mistyped command, longer", args: []string{"staats"}, code: 2, stderr: `(did you mean "stats"?)`, emptyStdout: true},
		{name: "mistyped demo", args: []string{"dmeo"}, code: 2, stderr: `(did you mean "demo"?)`, emptyStdout: true},
		{name: "unknown flag, two dashes", args: []string{"-x"}, code: 2, stderr: "cachectl: unknown flag --x\n", emptyStdout: true},
		{name: "mistyped flag", args: []string{"--jsno", "get", "k"}, code: 2, stderr: "unknown flag --jsno (did you mean --json?)", emptyStdout: true},
		{name: "demo flag", args: []string{"demo", "--fast"}, code: 2, stderr: "cachectl demo: unknown flag --fast", emptyStdout: true},
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

// TestNoGoNamesNoSingleDash: what cachectl prints about its flags uses two dashes, and no
// message shows a Go name for what the user gave (Default, Prefix, cache.Config).
func TestNoGoNamesNoSingleDash(t *testing.T) {
	singleDash := regexp.MustCompile(`(^|[\s(\[,])-[a-z]`)
	for _, args := range [][]string{
		{"help"}, {"help", "lock"}, {"help", "set"}, {"help", "unlock"}, {"-h"}, {"get", "-h"}, {"lock", "-h"},
		{"-x"}, {"get", "--bogus", "k"}, {"set", "a", "b", "--ttl", "soon"}, {"lock", "k", "--owner"},
		{"unlock", "k", "--force=maybe"}, {"nope"}, {"demo", "-x"},
	} {
		var stdout, stderr bytes.Buffer
		run(args, &stdout, &stderr)
		out := stdout.String() + stderr.String()
		for line := range strings.Lines(out) {
			if singleDash.MatchString(line) {
				t.Errorf("cachectl %q prints a flag with one dash: %q", args, line)
			}
		}
		for _, goName := range []string{"Default ", "Prefix ", "cache.Config", "flag provided", " for flag "} {
			if strings.Contains(out, goName) {
				t.Errorf("cachectl %q prints %q:\n%s", args, goName, out)
			}
		}
	}
}

func TestDidYouMean(t *testing.T) {
	cands := []string{"get", "set", "del", "ttl", "keys", "locks", "lock", "unlock", "stats", "demo", "help"}
	for in, want := range map[string]string{
		"lokc": `"lock"`, "lcok": `"lock"`, "unlok": `"unlock"`, "stat": `"stats"`, "kyes": `"keys"`, "gte": `"get"`,
		"frobnicate": "", "x": "", "lock": "", "zzz": "",
	} {
		got := didYouMean(in, cands)
		if (want == "") != (got == "") || !strings.Contains(got, want) {
			t.Errorf("didYouMean(%q) = %q; want %s", in, got, want)
		}
	}
	if got := didYouMean("--tll", []string{"--url", "--json", "--ttl"}); got != " (did you mean --ttl?)" {
		t.Errorf("didYouMean(--tll) = %q", got)
	}
	if got := didYouMean("--tll", []string{"--url", "--json"}); got != "" {
		t.Errorf("didYouMean(--tll) without --ttl = %q; want nothing (two edits in a short name)", got)
	}
	for _, tc := range []struct {
		a, b string
		d    int
	}{{"", "", 0}, {"lock", "lock", 0}, {"lokc", "lock", 1}, {"lock", "locks", 1}, {"get", "set", 1}, {"kitten", "sitting", 3}} {
		if d := editDistance(tc.a, tc.b); d != tc.d {
			t.Errorf("editDistance(%q, %q) = %d; want %d", tc.a, tc.b, d, tc.d)
		}
	}
}

// TestDemoReferences: every docs section the demo points to exists, under that title.
func TestDemoReferences(t *testing.T) {
	var out bytes.Buffer
	if _, err := runDemo(t.Context(), &out); err != nil {
		t.Fatal(err)
	}
	files := regexp.MustCompile(`docs/[\w.-]+\.md`).FindAllString(out.String(), -1)
	sections := regexp.MustCompile(`(docs/[\w.-]+\.md), "([^"]+)"`).FindAllStringSubmatch(out.String(), -1)
	if len(files) == 0 || len(sections) == 0 {
		t.Fatalf("the demo points to no docs:\n%s", out.String())
	}
	for _, f := range files {
		if _, err := os.Stat(filepath.Join("..", "..", f)); err != nil {
			t.Errorf("the demo points to %s: %v", f, err)
		}
	}
	for _, m := range sections {
		b, err := os.ReadFile(filepath.Join("..", "..", m[1]))
		if err != nil {
			t.Errorf("the demo points to %s: %v", m[1], err)
			continue
		}
		found := false
		for line := range strings.Lines(string(b)) {
			if strings.HasPrefix(line, "#") && strings.TrimSpace(strings.TrimLeft(line, "#")) == m[2] {
				found = true
			}
		}
		if !found {
			t.Errorf("the demo points to %s, %q: no heading with that title", m[1], m[2])
		}
	}
	if !strings.Contains(out.String(), "cache.Once(") {
		t.Errorf("the demo does not show cache.Once:\n%s", out.String())
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
	case <-time.After(hangAfter):
		t.Fatal("runDemo with a cancelled context did not return")
	}
}

// BenchmarkDemo is one run of `cachectl demo`, which a newcomer runs first: its target,
// well under a second, is in docs/benchmarks.md.
func BenchmarkDemo(b *testing.B) {
	for b.Loop() {
		if _, err := runDemo(b.Context(), io.Discard); err != nil {
			b.Fatal(err)
		}
	}
}
