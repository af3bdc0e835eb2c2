//go:build unix

package filecache_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/cachekit/cache/drivers/filecache"
)

// Flush and DeleteNamespace with things in Dir that the cache did not write, under
// entries' names (a directory, an empty one, a named pipe): they remove every entry of
// the cache and return nil, on every call, not an error that no caller can clear; each
// stray thing goes to OnError (once per call) and stays where it is.
func TestFlushWithStrayEntriesSucceeds(t *testing.T) {
	for _, op := range []string{"Flush", "DeleteNamespace"} {
		t.Run(op, func(t *testing.T) {
			var log errorLog
			d := newDriver(t, filecache.Options{SweepInterval: -1, OnError: log.add})
			ctx := context.Background()
			full, empty, fifo := d.PathOf("ns.dir"), d.PathOf("ns.empty"), d.PathOf("ns.fifo")
			if err := os.Mkdir(full, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(full, "x"), []byte("theirs"), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Mkdir(empty, 0o700); err != nil {
				t.Fatal(err)
			}
			mkfifo(t, fifo)
			run := func() (err error) {
				within(t, op, fifo, func() {
					if op == "Flush" {
						err = d.Flush(ctx)
					} else {
						err = d.DeleteNamespace(ctx, "ns")
					}
				})
				if t.Failed() {
					t.FailNow()
				}
				return err
			}
			for round := range 3 {
				keys := []string{fmt.Sprintf("ns.a%d", round), fmt.Sprintf("ns.b%d", round), "ns"}
				for _, k := range keys {
					if err := d.Set(ctx, entry(k, []byte("1"), 0)); err != nil {
						t.Fatal(err)
					}
				}
				if err := run(); err != nil {
					t.Fatalf("round %d: %s = %v; want nil: every entry of the cache was removed", round, op, err)
				}
				for _, k := range keys {
					if _, err := os.Lstat(d.PathOf(k)); !errors.Is(err, os.ErrNotExist) {
						t.Fatalf("round %d: %s left the entry %q: %v", round, op, k, err)
					}
				}
				for _, p := range []string{full, empty, fifo} {
					if _, err := os.Lstat(p); err != nil {
						t.Fatalf("round %d: %s removed %s: %v", round, op, p, err)
					}
				}
				errs := log.take()
				if len(errs) != 3 {
					t.Fatalf("round %d: OnError got %d reports %v; want one for each of the 3 stray entries", round, len(errs), errs)
				}
				for _, err := range errs {
					if !errors.Is(err, filecache.ErrNotRegular) {
						t.Fatalf("round %d: OnError got %v; want errors matching ErrNotRegular", round, err)
					}
				}
			}
		})
	}
}

// A file of the cache's that Flush cannot remove is still Flush's error: only the stray
// entries, which are not the cache's, leave it out.
func TestFlushReportsEntriesItCannotRemove(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root removes files from a read-only directory")
	}
	var log errorLog
	dir := t.TempDir()
	d := newDriver(t, filecache.Options{Dir: dir, SweepInterval: -1, OnError: log.add})
	ctx := context.Background()
	if err := d.Set(ctx, entry("k", []byte("1"), 0)); err != nil {
		t.Fatal(err)
	}
	mkfifo(t, d.PathOf("fifo"))
	if err := os.Chmod(dir, 0o500); err != nil { // no unlink in Dir
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Chmod(dir, 0o700) })
	var err error
	within(t, "Flush", d.PathOf("fifo"), func() { err = d.Flush(ctx) })
	if err == nil || errors.Is(err, filecache.ErrNotRegular) {
		t.Fatalf("Flush that could not remove an entry = %v; want an error about it, and none about the pipe", err)
	}
	if _, serr := os.Lstat(d.PathOf("k")); serr != nil {
		t.Fatalf("the entry is gone (%v), though Flush failed with %v", serr, err)
	}
	if errs := log.take(); len(errs) != 1 || !errors.Is(errs[0], filecache.ErrNotRegular) {
		t.Fatalf("OnError got %v; want one report, of the pipe", errs)
	}
}
