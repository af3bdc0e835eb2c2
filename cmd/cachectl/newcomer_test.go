package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cachekit/cache/internal/testkit/redistest"
)

// TestNewcomer is the README's first session as a new user runs it, with the built binary and a
// redis-server of its own: the cache comes from CACHE_DRIVERS alone; a first shell takes
// a lock and holds it; a second shell sees it with `cachectl locks`, force-releases it,
// and sees it gone; then the first shell is stopped.
func TestNewcomer(t *testing.T) {
	srv := redistest.Start(t) // in CI a missing redis-server fails here, never skips
	t.Logf("Redis: %s at %s", srv.Kind(), srv.Addr())
	bin := buildCachectl(t)
	env := append(withoutCacheVars(os.Environ()), "CACHE_DRIVERS="+srv.URL())

	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()

	// The first shell: cachectl lock lock.nightly --ttl 1m --owner shell-1 --hold 30s
	holder := exec.CommandContext(ctx, bin, "lock", "lock.nightly", "--ttl", "1m", "--owner", "shell-1", "--hold", "30s")
	holder.Env = env
	var holderErr bytes.Buffer
	holder.Stderr = &holderErr
	out, err := holder.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	stopped := false
	defer func() {
		if !stopped {
			_ = holder.Process.Kill()
			<-exited
		}
	}()
	lines := bufio.NewScanner(out)
	tokenc := make(chan string, 1)
	go func() {
		if lines.Scan() {
			tokenc <- lines.Text()
		}
		close(tokenc)
		_, _ = io.Copy(io.Discard, out)
		exited <- holder.Wait()
	}()
	var token string
	select {
	case tok, ok := <-tokenc:
		if !ok {
			t.Fatalf("the holder printed no token; stderr: %s", holderErr.String())
		}
		token = tok
	case <-time.After(30 * time.Second):
		t.Fatalf("the holder did not take the lock within 30s; stderr: %s", holderErr.String())
	}
	if !strings.HasPrefix(token, "shell-1#") {
		t.Fatalf("the holder printed %q; want its token, shell-1#...", token)
	}

	// The second shell.
	shell := func(args ...string) (stdout, stderr string, code int) {
		t.Helper()
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Env = env
		var o, e bytes.Buffer
		cmd.Stdout, cmd.Stderr = &o, &e
		err := cmd.Run()
		var exit *exec.ExitError
		switch {
		case err == nil:
		case errors.As(err, &exit):
			code = exit.ExitCode()
		default:
			t.Fatalf("cachectl %q: %v", args, err)
		}
		return o.String(), e.String(), code
	}

	stdout, stderr, code := shell("locks", "--json")
	if code != 0 {
		t.Fatalf("cachectl locks --json: exit %d: %s", code, stderr)
	}
	var doc locksDoc
	if err := json.Unmarshal([]byte(stdout), &doc); err != nil {
		t.Fatalf("cachectl locks --json printed %q: %v", stdout, err)
	}
	var seen *lockDoc
	for i, l := range doc.Locks {
		if l.Key == "lock.nightly" {
			seen = &doc.Locks[i]
		}
	}
	switch {
	case seen == nil:
		t.Fatalf("cachectl locks --json = %s; want lock.nightly listed", stdout)
	case seen.Owner != "shell-1" || seen.Token != token:
		t.Errorf("lock.nightly listed as %+v; want owner shell-1 and token %s", *seen, token)
	case seen.TTLms <= 0 || seen.TTLms > 60000:
		t.Errorf("lock.nightly's remaining TTL = %dms; want (0, 60000]", seen.TTLms)
	}

	if stdout, stderr, code := shell("unlock", "lock.nightly", "--force"); code != 0 || !strings.Contains(stdout, "shell-1") {
		t.Fatalf("cachectl unlock lock.nightly --force: exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	stdout, stderr, code = shell("locks")
	if code != 0 {
		t.Fatalf("cachectl locks: exit %d: %s", code, stderr)
	}
	if strings.Contains(stdout, "lock.nightly") {
		t.Errorf("cachectl locks after the force release still lists it:\n%s", stdout)
	}
	if _, _, code := shell("unlock", "lock.nightly", "--force"); code != exitNotFound {
		t.Errorf("a second unlock: exit %d; want %d (no lock)", code, exitNotFound)
	}

	// Stop the first shell, as Ctrl-C would. Its own release finds the lock gone.
	if err := holder.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		stopped = true
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != exitFailure {
			t.Errorf("the holder exited with %v; want exit %d (its lock was force-released)", err, exitFailure)
		}
		if msg := holderErr.String(); !strings.Contains(msg, "force-released") {
			t.Errorf("the holder's stderr = %q; want it to say the lock was force-released", msg)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the holder did not exit within 15s of SIGTERM")
	}
}

// TestNewcomerRelease: a holder stopped by SIGTERM while it still has the lock releases
// it, so that the next shell can take it at once.
func TestNewcomerRelease(t *testing.T) {
	srv := redistest.Start(t)
	bin := buildCachectl(t)
	env := append(withoutCacheVars(os.Environ()), "CACHE_DRIVERS="+srv.URL())
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()

	holder := exec.CommandContext(ctx, bin, "lock", "lock.deploy", "--ttl", "1m", "--json")
	holder.Env = env
	var stderr bytes.Buffer
	holder.Stderr = &stderr
	out, err := holder.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	var doc lockTakenDoc
	if err := json.NewDecoder(out).Decode(&doc); err != nil || !doc.Acquired {
		_ = holder.Process.Kill()
		_ = holder.Wait()
		t.Fatalf("lock --json: %+v, %v; stderr: %s", doc, err, stderr.String())
	}
	_ = holder.Process.Signal(syscall.SIGTERM)
	if err := holder.Wait(); err != nil {
		t.Fatalf("the holder exited with %v; want 0 after releasing; stderr: %s", err, stderr.String())
	}
	again := exec.CommandContext(ctx, bin, "lock", "lock.deploy", "--ttl", "1m", "--hold", "1ms")
	again.Env = env
	if b, err := again.CombinedOutput(); err != nil {
		t.Fatalf("the next lock: %v: %s", err, b)
	}
}

// buildCachectl builds the binary once per test binary, into a directory removed when
// the tests end.
func buildCachectl(t *testing.T) string {
	t.Helper()
	built.once.Do(func() {
		dir, err := os.MkdirTemp("", "cachectl-bin-")
		if err != nil {
			built.err = err
			return
		}
		built.dir = dir
		bin := filepath.Join(dir, "cachectl")
		gobin, err := exec.LookPath("go")
		if err != nil {
			gobin = filepath.Join(runtime.GOROOT(), "bin", "go")
		}
		cmd := exec.Command(gobin, "build", "-o", bin, ".")
		if b, err := cmd.CombinedOutput(); err != nil {
			built.err = errors.New("go build: " + err.Error() + ": " + string(b))
			return
		}
		built.path = bin
	})
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built.path
}

var built struct {
	once      sync.Once
	path, dir string // dir is removed by TestMain
	err       error
}

// withoutCacheVars drops the CACHE_* variables of the test's own environment.
func withoutCacheVars(env []string) []string {
	out := env[:0:0]
	for _, kv := range env {
		if !strings.HasPrefix(kv, "CACHE_") {
			out = append(out, kv)
		}
	}
	return out
}
