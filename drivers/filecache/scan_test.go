package filecache_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cachekit/cache/driver"
	"github.com/cachekit/cache/drivers/filecache"
)

// scanAll returns the keys Scan lists under prefix, sorted.
func scanAll(t *testing.T, d *filecache.Driver, prefix string) []string {
	t.Helper()
	var got []string
	if err := d.Scan(context.Background(), prefix, func(k string) bool { got = append(got, k); return true }); err != nil {
		t.Fatalf("Scan(%q): %v", prefix, err)
	}
	slices.Sort(got)
	return got
}

// TestScanLongKeys: keys too long for a direct file name (hashed names) are listed by
// their full key, read from the file, and the prefix is matched against the full key
// even where it goes past the readable part of the name.
func TestScanLongKeys(t *testing.T) {
	ctx := context.Background()
	d := newDriver(t, filecache.Options{SweepInterval: -1})
	long := strings.Repeat("x", 300)
	keys := []string{
		"a.short",
		"a." + long + ".1",
		"a." + long + ".2",
		"a." + strings.Repeat("É", 120), // escapes to 6 bytes a character: hashed
		"b." + long,
	}
	for _, k := range keys {
		if err := d.Set(ctx, entry(k, []byte("1"), time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	if _, hashed, _ := filecache.KeyOfName(filepath.Base(d.PathOf(keys[1]))); !hashed {
		t.Fatal("the long key's file name is not hashed: the test tests nothing")
	}
	want := slices.Clone(keys)
	slices.Sort(want)
	if got := scanAll(t, d, ""); !slices.Equal(got, want) {
		t.Errorf("Scan(\"\") = %q; want %q", got, want)
	}
	want = slices.Sorted(slices.Values(keys[:4]))
	if got := scanAll(t, d, "a."); !slices.Equal(got, want) {
		t.Errorf("Scan(a.) = %q; want %q", got, want)
	}
	// A prefix longer than the readable part of the hashed names.
	if got, want := scanAll(t, d, "a."+long+".2"), []string{keys[2]}; !slices.Equal(got, want) {
		t.Errorf("Scan(a.<long>.2) = %q; want %q", got, want)
	}
	if got := scanAll(t, d, "a."+long+".3"); len(got) != 0 {
		t.Errorf("Scan(a.<long>.3) = %q; want nothing", got)
	}
}

// TestScanSkips: expired entries, corrupt files, the driver's own files (marker, lock
// and fence directories, temporary files) and foreign files are never listed; upper
// case and escaped bytes in keys come back as written.
func TestScanSkips(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	log := &errorLog{}
	d := newDriver(t, filecache.Options{SweepInterval: -1, Now: clk.Now, OnError: log.add})
	for _, e := range []driver.Entry{
		entry("k.live", []byte("1"), time.Hour),
		entry("k.Upper/Slash %", []byte("1"), 0),
		entry("k.expiring", []byte("1"), time.Minute),
		entry("k.corrupt", []byte("1"), time.Hour),
	} {
		if err := d.Set(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := d.CreateFenced(ctx, entry("k.fenced", []byte("1"), time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(d.PathOf("k.corrupt"), []byte("not an entry"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{".tmp-123", "README.TXT", "k.%zz"} {
		if err := os.WriteFile(filepath.Join(d.Dir(), name), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	clk.Add(2 * time.Minute)
	want := []string{"k.Upper/Slash %", "k.fenced", "k.live"}
	if got := scanAll(t, d, ""); !slices.Equal(got, want) {
		t.Errorf("Scan = %q; want %q", got, want)
	}
	errs := log.take()
	if len(errs) == 0 || !errors.Is(errs[0], filecache.ErrCorrupt) {
		t.Errorf("OnError got %v; want the corrupt file reported", errs)
	}
}

// TestScanStopsAndFails: Scan stops when fn returns false, and fails after Close or with
// a done context.
func TestScanStopsAndFails(t *testing.T) {
	ctx := context.Background()
	d := newDriver(t, filecache.Options{SweepInterval: -1})
	for _, k := range []string{"s.1", "s.2", "s.3"} {
		if err := d.Set(ctx, entry(k, []byte("1"), 0)); err != nil {
			t.Fatal(err)
		}
	}
	n := 0
	if err := d.Scan(ctx, "s.", func(string) bool { n++; return false }); err != nil || n != 1 {
		t.Errorf("Scan with fn returning false: %d calls, %v; want 1, nil", n, err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := d.Scan(cctx, "", func(string) bool { return true }); !errors.Is(err, context.Canceled) {
		t.Errorf("Scan with a cancelled ctx = %v; want context.Canceled", err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if err := d.Scan(ctx, "", func(string) bool { return true }); !errors.Is(err, driver.ErrClosed) {
		t.Errorf("Scan after Close = %v; want ErrClosed", err)
	}
}
