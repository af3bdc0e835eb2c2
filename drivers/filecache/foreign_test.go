//go:build unix

package filecache_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cachekit/cache/driver"
	"github.com/cachekit/cache/drivers/filecache"
)

// Things that are not the driver's where an entry would be: a named pipe (FIFO), a
// directory, a symbolic link. None of them may make the driver hang, read or write
// outside Dir, or disappear without a word.

// mkfifo makes a named pipe at path.
func mkfifo(t *testing.T, path string) {
	t.Helper()
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Fatalf("mkfifo: %v", err)
	}
}

// unblockFIFO opens the pipe at path for writing and closes it, so that a reader blocked
// in open(2) on it wakes up (and reads EOF). It is what a test does after a hang, so
// that the hung goroutine and Close can finish.
func unblockFIFO(path string) {
	f, err := os.OpenFile(path, os.O_WRONLY|syscall.O_NONBLOCK, 0)
	if err == nil {
		_ = f.Close()
	}
}

// blockedAfter is how long within lets f run: a hang detector. A call that opens a
// named pipe blocks for good (until a writer comes), so any limit tells it from one
// that does not; a minute tells it on any machine, however busy.
const blockedAfter = time.Minute

// within runs f and fails the test if it has not returned after blockedAfter; then it
// keeps opening the pipe at fifo for writing (which wakes a reader blocked on it) until
// f returns, so that the test ends either way.
func within(t *testing.T, what string, fifo string, f func()) {
	limit := blockedAfter
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	select {
	case <-done:
		return
	case <-time.After(limit):
	}
	t.Errorf("%s: still blocked after %v", what, limit)
	for {
		unblockFIFO(fifo)
		select {
		case <-done:
			return
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func isNotRegular(t *testing.T, what string, err error, path string) {
	t.Helper()
	if !errors.Is(err, filecache.ErrNotRegular) {
		t.Fatalf("%s: error %v; want one matching filecache.ErrNotRegular", what, err)
	}
	if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "not a regular file") {
		t.Fatalf("%s: error %q; want it to name %s and say it is not a regular file", what, err, path)
	}
}

// TestFIFOReads: every read of a key whose file is a named pipe returns at once with an
// error that names the file (never a miss, never a hang).
func TestFIFOReads(t *testing.T) {
	var log errorLog
	d := newDriver(t, filecache.Options{SweepInterval: -1, OnError: log.add})
	path := d.PathOf("k")
	mkfifo(t, path)
	ctx, cancel := context.WithTimeout(context.Background(), blockedAfter/2)
	defer cancel()
	reads := []struct {
		name string
		f    func() error
	}{
		{"Get", func() error { _, _, err := d.Get(ctx, "k"); return err }},
		{"TTL", func() error { _, _, err := d.TTL(ctx, "k"); return err }},
		{"Pull", func() error { _, _, err := d.Pull(ctx, "k"); return err }},
		{"Increment", func() error { _, err := d.Increment(ctx, "k", 1, 0); return err }},
		{"Create", func() error { _, err := d.SetIf(ctx, entry("k", []byte("1"), 0), driver.IfAbsent); return err }},
		{"CompareAndDelete", func() error { _, err := d.CompareAndDelete(ctx, "k", []byte("1")); return err }},
		{"CreateFenced", func() error { _, _, err := d.CreateFenced(ctx, entry("k", []byte("1"), 0)); return err }},
	}
	for _, r := range reads {
		var err error
		start := time.Now()
		within(t, r.name, path, func() { err = r.f() })
		if t.Failed() {
			t.FailNow()
		}
		if errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("%s waited on the pipe until its ctx ended (%v, after %v): it must not wait", r.name, err, time.Since(start))
		}
		isNotRegular(t, r.name, err, path)
	}
	// Nothing changed it: it is still a pipe.
	if info, err := os.Lstat(path); err != nil || info.Mode()&os.ModeNamedPipe == 0 {
		t.Fatalf("after the reads: %v, %v; want the pipe left alone", info, err)
	}
}

// TestFIFOSweepAndClose: a background sweep that meets a named pipe skips it and reports
// it, and Close returns.
func TestFIFOSweepAndClose(t *testing.T) {
	var log errorLog
	d, err := filecache.New(filecache.Options{Dir: t.TempDir(), SweepInterval: time.Millisecond, OnError: log.add})
	if err != nil {
		t.Fatal(err)
	}
	path := d.PathOf("k")
	mkfifo(t, path)
	time.Sleep(50 * time.Millisecond) // several sweeps
	within(t, "Close", path, func() { _ = d.Close() })
	if t.Failed() {
		t.FailNow()
	}
	errs := log.take()
	if len(errs) == 0 {
		t.Fatal("the sweep did not report the pipe")
	}
	isNotRegular(t, "the sweep's report", errs[0], path)
}

// TestFIFOByHand: Sweep and Scan skip a pipe, without blocking.
func TestFIFOByHand(t *testing.T) {
	var log errorLog
	d := newDriver(t, filecache.Options{SweepInterval: -1, OnError: log.add})
	ctx := context.Background()
	if err := d.Set(ctx, entry("a", []byte("1"), 0)); err != nil {
		t.Fatal(err)
	}
	path := d.PathOf("k")
	mkfifo(t, path)
	within(t, "Sweep", path, func() { _, err := d.Sweep(ctx); _ = err })
	var keys []string
	within(t, "Scan", path, func() {
		_ = d.Scan(ctx, "", func(k string) bool { keys = append(keys, k); return true })
	})
	if t.Failed() {
		t.FailNow()
	}
	if len(keys) != 1 || keys[0] != "a" {
		t.Fatalf("Scan = %q; want [a]", keys)
	}
	if errs := log.take(); len(errs) == 0 {
		t.Fatal("Sweep did not report the pipe")
	} else {
		isNotRegular(t, "Sweep's report", errs[0], path)
	}
}

// TestSetOverForeign: a plain Set replaces a pipe or a symbolic link with the entry (the
// rename replaces the name, never what a link points to), and fails with a clear error
// over a directory, which stays.
func TestSetOverForeign(t *testing.T) {
	d := newDriver(t, filecache.Options{SweepInterval: -1})
	ctx := context.Background()
	mkfifo(t, d.PathOf("fifo"))
	outside := filepath.Join(t.TempDir(), "outside")
	if err := os.WriteFile(outside, []byte("theirs"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, d.PathOf("link")); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"fifo", "link"} {
		if err := d.Set(ctx, entry(k, []byte("v"), 0)); err != nil {
			t.Fatalf("Set over a %s: %v", k, err)
		}
		if v, found := mustGet(t, d, k); !found || string(v) != "v" {
			t.Fatalf("Get after Set over a %s = %q, %v", k, v, found)
		}
	}
	if b, err := os.ReadFile(outside); err != nil || string(b) != "theirs" {
		t.Fatalf("the file outside Dir now holds %q, %v; want it untouched", b, err)
	}
	dir := d.PathOf("dir")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	err := d.Set(ctx, entry("dir", []byte("v"), 0))
	isNotRegular(t, "Set over a directory", err, dir)
	if info, err := os.Lstat(dir); err != nil || !info.IsDir() {
		t.Fatalf("the directory: %v, %v; want it left alone", info, err)
	}
}

// TestSymlinkNotFollowed: an entry's name that is a symbolic link to a file outside Dir
// (even a well-formed entry of the same key) is never read through, written through, or
// followed by Delete or Flush.
func TestSymlinkNotFollowed(t *testing.T) {
	var log errorLog
	d := newDriver(t, filecache.Options{SweepInterval: -1, OnError: log.add})
	other := newDriver(t, filecache.Options{SweepInterval: -1})
	ctx := context.Background()
	if err := other.Set(ctx, entry("k", []byte(`"secret"`), 0)); err != nil {
		t.Fatal(err)
	}
	target := other.PathOf("k")
	before, err := os.ReadFile(target)
	if err != nil {
		t.Fatal(err)
	}
	link := d.PathOf("k")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	v, found, err := d.Get(ctx, "k")
	if found {
		t.Fatalf("Get read %q through a symbolic link", v)
	}
	isNotRegular(t, "Get of a symbolic link", err, link)
	_, err = d.Increment(ctx, "k", 1, 0)
	isNotRegular(t, "Increment of a symbolic link", err, link)

	// Flush skips it (and tells OnError); Delete removes the link, never its target.
	if err := d.Flush(ctx); err != nil {
		t.Fatalf("Flush with a symbolic link: %v; want nil (the link is not the cache's)", err)
	}
	if _, err := os.Lstat(link); err != nil {
		t.Fatalf("Flush removed the link: %v", err)
	}
	if errs := log.take(); len(errs) != 1 {
		t.Fatalf("OnError got %v; want the link reported once", errs)
	} else {
		isNotRegular(t, "Flush's report", errs[0], link)
	}
	if err := d.Delete(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(link); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Delete left the link: %v", err)
	}
	if after, err := os.ReadFile(target); err != nil || string(after) != string(before) {
		t.Fatalf("the link's target changed: %v", err)
	}
}

// TestFlushForeign: Flush and DeleteNamespace remove every entry even with a directory,
// a pipe and a link among them; they skip those (a directory, even empty, is never
// removed), report each to OnError, and return nil: they are not the cache's entries.
func TestFlushForeign(t *testing.T) {
	for _, op := range []string{"Flush", "DeleteNamespace"} {
		t.Run(op, func(t *testing.T) {
			var log errorLog
			d := newDriver(t, filecache.Options{SweepInterval: -1, OnError: log.add})
			ctx := context.Background()
			for i := range 50 {
				if err := d.Set(ctx, entry(fmt.Sprintf("ns.k%02d", i), []byte("1"), 0)); err != nil {
					t.Fatal(err)
				}
			}
			full := d.PathOf("ns.full")
			if err := os.Mkdir(full, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(full, "x"), []byte("theirs"), 0o600); err != nil {
				t.Fatal(err)
			}
			empty := d.PathOf("ns.empty")
			if err := os.Mkdir(empty, 0o700); err != nil {
				t.Fatal(err)
			}
			mkfifo(t, d.PathOf("ns.fifo"))
			var err error
			within(t, op, d.PathOf("ns.fifo"), func() {
				if op == "Flush" {
					err = d.Flush(ctx)
				} else {
					err = d.DeleteNamespace(ctx, "ns")
				}
			})
			if t.Failed() {
				t.FailNow()
			}
			left := 0
			for i := range 50 {
				if _, err := os.Lstat(d.PathOf(fmt.Sprintf("ns.k%02d", i))); err == nil {
					left++
				}
			}
			if left > 0 {
				t.Fatalf("%s left %d of 50 entries (error %v)", op, left, err)
			}
			if err != nil {
				t.Fatalf("%s: error %v; want nil: every entry of the cache's was removed", op, err)
			}
			for _, p := range []string{full, empty, d.PathOf("ns.fifo")} {
				if _, err := os.Lstat(p); err != nil {
					t.Fatalf("%s removed %s: %v", op, p, err)
				}
			}
			if errs := log.take(); len(errs) != 3 {
				t.Fatalf("OnError got %d reports %v; want one for each of the 3 files skipped", len(errs), errs)
			}
		})
	}
}

// TestDeleteForeign: Delete removes a pipe (an explicit delete of the key, as a plain Set
// replaces it) and fails with a clear error on a directory, which stays.
func TestDeleteForeign(t *testing.T) {
	d := newDriver(t, filecache.Options{SweepInterval: -1})
	ctx := context.Background()
	mkfifo(t, d.PathOf("fifo"))
	if err := d.Delete(ctx, "fifo"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(d.PathOf("fifo")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Delete left the pipe: %v", err)
	}
	dir := d.PathOf("dir")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	isNotRegular(t, "Delete of a directory", d.Delete(ctx, "dir"), dir)
	if info, err := os.Lstat(dir); err != nil || !info.IsDir() {
		t.Fatalf("Delete removed an empty directory: %v", err)
	}
}

// TestNewWithFIFOMarker: New on a directory whose marker is a pipe fails at once.
func TestNewWithFIFOMarker(t *testing.T) {
	dir := t.TempDir()
	marker := filepath.Join(dir, ".filecache")
	mkfifo(t, marker)
	var err error
	within(t, "New", marker, func() {
		var d *filecache.Driver
		d, err = filecache.New(filecache.Options{Dir: dir, SweepInterval: -1})
		if d != nil {
			_ = d.Close()
		}
	})
	if t.Failed() {
		t.FailNow()
	}
	if err == nil {
		t.Fatal("New with a pipe as its marker: no error")
	}
}

// plantFIFO is the conformance suite's Plant: a named pipe at key's file.
func plantFIFO(t *testing.T, d driver.Driver, key string) {
	mkfifo(t, d.(*filecache.Driver).PathOf(key))
}
