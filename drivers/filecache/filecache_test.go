package filecache_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/cachekit/cache/driver"
	"github.com/cachekit/cache/drivers/filecache"
	"github.com/cachekit/cache/drivertest"
)

func TestMain(m *testing.M) {
	child.Main() // a child process of the cross-process tests runs its job and exits here
	goleak.VerifyTestMain(m)
}

// newDriver opens a driver on a fresh directory (unless o.Dir is set) and closes it when
// the test ends.
func newDriver(t testing.TB, o filecache.Options) *filecache.Driver {
	t.Helper()
	if o.Dir == "" {
		o.Dir = t.TempDir()
	}
	if o.OnError == nil {
		o.OnError = func(err error) { t.Errorf("OnError: %v", err) }
	}
	d, err := filecache.New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	return d
}

func TestConformance(t *testing.T) {
	// The foreign-data case's named pipe is reported by Flush: expected, and only that.
	opts := func(t *testing.T) filecache.Options {
		return filecache.Options{OnError: func(err error) {
			if !errors.Is(err, filecache.ErrNotRegular) {
				t.Errorf("OnError: %v", err)
			}
		}}
	}
	drivertest.RunWith(t, drivertest.Harness{
		New: func(t *testing.T) driver.Driver { return newDriver(t, opts(t)) },
		NewWithDefaultTTL: func(t *testing.T, ttl time.Duration) driver.Driver {
			o := opts(t)
			o.DefaultTTL = ttl
			return newDriver(t, o)
		},
		Plant: plantFIFO,
	})
}

func entry(key string, v []byte, ttl time.Duration) driver.Entry {
	return driver.Entry{Key: key, Value: v, TTL: ttl}
}

// fakeClock is a clock the test moves by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock { return &fakeClock{t: time.Unix(1_800_000_000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// errorLog collects what the driver reports to OnError.
type errorLog struct {
	mu   sync.Mutex
	errs []error
}

func (l *errorLog) add(err error) {
	l.mu.Lock()
	l.errs = append(l.errs, err)
	l.mu.Unlock()
}

// take returns the errors reported so far and forgets them.
func (l *errorLog) take() []error {
	l.mu.Lock()
	defer l.mu.Unlock()
	errs := l.errs
	l.errs = nil
	return errs
}

// entryFiles returns the names of the files in dir that are not the driver's own.
func entryFiles(t *testing.T, dir string) []string {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, de := range des {
		if !strings.HasPrefix(de.Name(), ".") {
			names = append(names, de.Name())
		}
	}
	return names
}

func mustGet(t *testing.T, d *filecache.Driver, key string) ([]byte, bool) {
	t.Helper()
	v, found, err := d.Get(context.Background(), key)
	if err != nil {
		t.Fatalf("Get(%.40q): %v", key, err)
	}
	if !found {
		return nil, false
	}
	return v.([]byte), true
}

func TestOptions(t *testing.T) {
	if _, err := filecache.New(filecache.Options{}); err == nil {
		t.Error("New without Dir succeeded")
	}
	if _, err := filecache.New(filecache.Options{Dir: t.TempDir(), DefaultTTL: -time.Second}); err == nil {
		t.Error("New with a negative DefaultTTL succeeded")
	}
	// Dir is created with its parents, mode 0700.
	dir := filepath.Join(t.TempDir(), "a", "b")
	d := newDriver(t, filecache.Options{Dir: dir})
	info, err := os.Stat(dir)
	if err != nil || !info.IsDir() || info.Mode().Perm() != 0o700 {
		t.Fatalf("Dir: %v, %v; want a directory with mode 0700", info, err)
	}
	if d.Dir() != dir || d.Codec() != driver.JSON || d.DefaultTTL() != 0 {
		t.Fatalf("Dir, Codec, DefaultTTL = %q, %v, %v", d.Dir(), d.Codec(), d.DefaultTTL())
	}
	// A file where Dir should be is an error.
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := filecache.New(filecache.Options{Dir: file}); err == nil {
		t.Error("New on a regular file succeeded")
	}
	// A directory of another format is refused.
	other := t.TempDir()
	if err := os.WriteFile(filepath.Join(other, ".filecache"), []byte("cachekit filecache format 2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := filecache.New(filecache.Options{Dir: other}); err == nil {
		t.Error("New on a directory of another format succeeded")
	}
}

// TestPersistence: the files outlive the driver; a new driver on the same directory,
// like another process, reads them, with their expiry.
func TestPersistence(t *testing.T) {
	clk := newClock()
	dir := t.TempDir()
	ctx := context.Background()
	d1 := newDriver(t, filecache.Options{Dir: dir, Now: clk.Now})
	if err := d1.Set(ctx, entry("k", []byte(`"v"`), 0)); err != nil {
		t.Fatal(err)
	}
	if err := d1.Set(ctx, entry("short", []byte(`1`), time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := d1.Close(); err != nil {
		t.Fatal(err)
	}
	d2 := newDriver(t, filecache.Options{Dir: dir, Now: clk.Now})
	if v, found := mustGet(t, d2, "k"); !found || string(v) != `"v"` {
		t.Fatalf("a new driver reads %q, %v; want the value the old one wrote", v, found)
	}
	if _, found := mustGet(t, d2, "short"); !found {
		t.Fatal("an entry with a TTL did not survive the driver")
	}
	clk.Add(time.Minute)
	if _, found := mustGet(t, d2, "short"); found {
		t.Fatal("an entry was a hit at its expiry")
	}
	if _, err := os.Stat(d2.PathOf("short")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("an expired entry's file is still there after a read: %v", err)
	}
}

func TestValuesMustBeBytes(t *testing.T) {
	d := newDriver(t, filecache.Options{})
	ctx := context.Background()
	if err := d.Set(ctx, driver.Entry{Key: "k", Value: 42}); err == nil {
		t.Fatal("Set of an int succeeded on a byte driver")
	}
	if err := d.Set(ctx, driver.Entry{Key: "k", Value: "text"}); err != nil {
		t.Fatal(err)
	}
	if v, _ := mustGet(t, d, "k"); string(v) != "text" {
		t.Fatalf("Get = %q", v)
	}
	if err := d.Set(ctx, driver.Entry{Key: "", Value: []byte("x")}); err == nil {
		t.Fatal("Set with an empty key succeeded")
	}
	// An empty key would name Dir itself: every method refuses it.
	_, _, errGet := d.Get(ctx, "")
	_, _, errPull := d.Pull(ctx, "")
	_, errCAD := d.CompareAndDelete(ctx, "", []byte("x"))
	_, errExt := d.Extend(ctx, "", []byte("x"), time.Second)
	_, _, errTTL := d.TTL(ctx, "")
	_, errWatch := d.Watch(ctx, "")
	_, errIncr := d.Increment(ctx, "", 1, 0)
	for what, err := range map[string]error{"Get": errGet, "Pull": errPull, "CompareAndDelete": errCAD,
		"Extend": errExt, "TTL": errTTL, "Watch": errWatch, "Increment": errIncr, "Delete": d.Delete(ctx, "")} {
		if err == nil {
			t.Errorf("%s with an empty key: no error", what)
		}
	}
}

// corruptions turn a good file into a bad one.
var corruptions = []struct {
	name string
	f    func([]byte) []byte
}{
	{"empty", func([]byte) []byte { return nil }},
	{"garbage", func([]byte) []byte { return []byte("not a cache file at all, but long enough") }},
	{"bad magic", func(b []byte) []byte { b[0] = 'X'; return b }},
	{"flipped value byte", func(b []byte) []byte { b[len(b)-6] ^= 0x40; return b }},
	{"flipped expiry", func(b []byte) []byte { b[5] ^= 0x01; return b }},
	{"bad checksum", func(b []byte) []byte { b[len(b)-1] ^= 0xff; return b }},
	{"trailing bytes", func(b []byte) []byte { return append(b, 0) }},
	{"huge lengths", func(b []byte) []byte {
		for i := 12; i < 24; i++ {
			b[i] = 0xff
		}
		return b
	}},
}

// TestCorruptFiles: a corrupt, truncated or foreign file is a miss for every read, is
// reported to OnError with ErrCorrupt, never crashes a read, and is replaced by the next
// write or removed by the sweep.
func TestCorruptFiles(t *testing.T) {
	var log errorLog
	d := newDriver(t, filecache.Options{SweepInterval: -1, OnError: log.add})
	ctx := context.Background()
	good := []byte(`{"name":"a value of some length"}`)
	if err := d.Set(ctx, entry("k", good, time.Hour)); err != nil {
		t.Fatal(err)
	}
	path := d.PathOf("k")
	orig, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	type bad struct {
		name string
		data []byte
	}
	var bads []bad
	for _, c := range corruptions {
		bads = append(bads, bad{c.name, c.f(bytes.Clone(orig))})
	}
	for n := range len(orig) { // a file cut at every length: what a torn write leaves
		bads = append(bads, bad{fmt.Sprintf("truncated to %d bytes", n), orig[:n]})
	}
	expectReported := func(t *testing.T, what string) {
		t.Helper()
		errs := log.take()
		if len(errs) == 0 {
			t.Fatalf("%s: nothing reported to OnError", what)
		}
		for _, err := range errs {
			if !errors.Is(err, filecache.ErrCorrupt) {
				t.Fatalf("%s: OnError got %v; want an error matching ErrCorrupt", what, err)
			}
		}
	}
	for _, b := range bads {
		write := func() {
			if err := os.WriteFile(path, b.data, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		write()
		if _, found := mustGet(t, d, "k"); found {
			t.Fatalf("%s: Get hit", b.name)
		}
		expectReported(t, b.name+": Get")
		if _, found, err := d.Pull(ctx, "k"); found || err != nil {
			t.Fatalf("%s: Pull = %v, %v; want a miss", b.name, found, err)
		}
		expectReported(t, b.name+": Pull")
		write()
		if ok, err := d.CompareAndDelete(ctx, "k", good); ok || err != nil {
			t.Fatalf("%s: CompareAndDelete = %v, %v; want false", b.name, ok, err)
		}
		expectReported(t, b.name+": CompareAndDelete")
		if ok, err := d.SetIf(ctx, entry("k", good, time.Hour), driver.IfPresent); ok || err != nil {
			t.Fatalf("%s: Update = %v, %v; want false", b.name, ok, err)
		}
		log.take()
		if n, err := d.Increment(ctx, "k", 5, 0); n != 5 || err != nil {
			t.Fatalf("%s: Increment = %d, %v; want a new counter at 5", b.name, n, err)
		}
		expectReported(t, b.name+": Increment")
		write()
		if ok, err := d.SetIf(ctx, entry("k", good, time.Hour), driver.IfAbsent); !ok || err != nil {
			t.Fatalf("%s: Create over a corrupt file = %v, %v; want written", b.name, ok, err)
		}
		log.take()
		if v, found := mustGet(t, d, "k"); !found || !bytes.Equal(v, good) {
			t.Fatalf("%s: after a write, Get = %q, %v", b.name, v, found)
		}
		write()
		removed, err := d.Sweep(ctx)
		if err != nil || removed != 1 {
			t.Fatalf("%s: Sweep = %d, %v; want the corrupt file removed", b.name, removed, err)
		}
		expectReported(t, b.name+": Sweep")
		if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("%s: the file is still there after Sweep: %v", b.name, err)
		}
	}
	t.Logf("%d kinds of corrupt file, each a miss and reported", len(bads))

	// Another key's file under this key's name (a copy, or a hash collision).
	if err := d.Set(ctx, entry("other", good, 0)); err != nil {
		t.Fatal(err)
	}
	other, _ := os.ReadFile(d.PathOf("other"))
	if err := os.WriteFile(path, other, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, found := mustGet(t, d, "k"); found {
		t.Fatal("Get returned another key's value")
	}
	expectReported(t, "another key's file")
}

// TestCorruptNotRegular: a directory with an entry's name is an error for Get, and the
// sweep and Flush leave it alone.
func TestNotARegularFile(t *testing.T) {
	var log errorLog
	d := newDriver(t, filecache.Options{SweepInterval: -1, OnError: log.add})
	ctx := context.Background()
	if err := os.Mkdir(d.PathOf("k"), 0o700); err != nil {
		t.Fatal(err)
	}
	if _, _, err := d.Get(ctx, "k"); err == nil {
		t.Fatal("Get of a directory: no error")
	}
	if _, err := d.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	if info, err := os.Stat(d.PathOf("k")); err != nil || !info.IsDir() {
		t.Fatalf("the sweep removed a directory: %v", err)
	}
}

// TestSweep: the background sweep removes expired entries and stale temporary files, and
// keeps live entries, fresh temporary files and files that are not the driver's; Close
// stops it.
func TestSweep(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	clk := newClock()
	dir := t.TempDir()
	var log errorLog
	d, err := filecache.New(filecache.Options{Dir: dir, Now: clk.Now, SweepInterval: 5 * time.Millisecond, OnError: log.add})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ctx := context.Background()
	long := strings.Repeat("long.", 60)
	for i := range 50 {
		for _, k := range []string{fmt.Sprintf("short.%d", i), long + fmt.Sprint(i)} {
			if err := d.Set(ctx, entry(k, []byte("1"), time.Minute)); err != nil {
				t.Fatal(err)
			}
		}
		if err := d.Set(ctx, entry(fmt.Sprintf("forever.%d", i), []byte("1"), 0)); err != nil {
			t.Fatal(err)
		}
		if err := d.Set(ctx, entry(fmt.Sprintf("hour.%d", i), []byte("1"), time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	stale := filepath.Join(dir, ".tmp-stale")
	fresh := filepath.Join(dir, ".tmp-fresh")
	foreign := filepath.Join(dir, "README")
	for _, p := range []string{stale, fresh, foreign} {
		if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-time.Hour)
	if err := os.Chtimes(stale, old, old); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	if n := len(entryFiles(t, dir)); n != 201 {
		t.Fatalf("%d files before the clock moved; want 201 (200 entries and README)", n)
	}
	clk.Add(2 * time.Minute)
	deadline := time.Now().Add(5 * time.Second)
	for len(entryFiles(t, dir)) != 101 {
		if time.Now().After(deadline) {
			t.Fatalf("after 5s the sweep left %d files; want 101", len(entryFiles(t, dir)))
		}
		time.Sleep(5 * time.Millisecond)
	}
	for len(stat(stale)) != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the sweep never removed a stale temporary file")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if stat(fresh) == "" || stat(foreign) == "" {
		t.Fatal("the sweep removed a fresh temporary file or a file that is not the driver's")
	}
	if errs := log.take(); len(errs) != 0 {
		t.Fatalf("OnError: %v", errs)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	// Closed: nothing sweeps any more.
	clk.Add(2 * time.Hour)
	time.Sleep(30 * time.Millisecond)
	if n := len(entryFiles(t, dir)); n != 101 {
		t.Fatalf("%d files after Close; want the 101 the sweep left", n)
	}
}

// stat returns the name of the file at p, or "" if it does not exist.
func stat(p string) string {
	info, err := os.Stat(p)
	if err != nil {
		return ""
	}
	return info.Name()
}

func TestSweepByHand(t *testing.T) {
	clk := newClock()
	d := newDriver(t, filecache.Options{Now: clk.Now, SweepInterval: -1})
	ctx := context.Background()
	for i := range 10 {
		if err := d.Set(ctx, entry(fmt.Sprint(i), []byte("1"), time.Duration(i+1)*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	clk.Add(5 * time.Second)
	if n, err := d.Sweep(ctx); n != 5 || err != nil {
		t.Fatalf("Sweep = %d, %v; want 5 removed", n, err)
	}
	if n := len(entryFiles(t, d.Dir())); n != 5 {
		t.Fatalf("%d files left; want 5", n)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := d.Sweep(cctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Sweep with a cancelled context = %v", err)
	}
}

// TestNamespaceHashedNames: DeleteNamespace finds long keys, whose file names are hashed,
// by the key stored in the file, and keeps the dot boundary.
func TestNamespaceHashedNames(t *testing.T) {
	d := newDriver(t, filecache.Options{})
	ctx := context.Background()
	ns := strings.Repeat("N", 100) // 200 bytes escaped: every key under it is hashed
	gone := []string{ns, ns + ".1", ns + "." + strings.Repeat("x", 500), ns + ".a.b"}
	kept := []string{ns + "X", ns + "_1", ns[:99], ns + strings.Repeat("x", 500), "x." + ns, "short"}
	for _, k := range append(append([]string{}, gone...), kept...) {
		if err := d.Set(ctx, entry(k, []byte("1"), 0)); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.DeleteNamespace(ctx, ns); err != nil {
		t.Fatal(err)
	}
	for _, k := range gone {
		if _, found := mustGet(t, d, k); found {
			t.Errorf("%.30q… survived DeleteNamespace", k)
		}
	}
	for _, k := range kept {
		if _, found := mustGet(t, d, k); !found {
			t.Errorf("DeleteNamespace removed %.30q…", k)
		}
	}
}

// TestFlush: Flush removes every entry, short and hashed, and keeps the directory, the
// lock files and files that are not the driver's.
func TestFlush(t *testing.T) {
	d := newDriver(t, filecache.Options{})
	ctx := context.Background()
	for _, k := range nastyKeys {
		if err := d.Set(ctx, entry(k, []byte("1"), 0)); err != nil {
			t.Fatal(err)
		}
	}
	foreign := filepath.Join(d.Dir(), "Not-Ours.txt")
	if err := os.WriteFile(foreign, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := d.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if names := entryFiles(t, d.Dir()); len(names) != 1 || names[0] != "Not-Ours.txt" {
		t.Fatalf("after Flush the directory holds %q; want only Not-Ours.txt", names)
	}
	for _, k := range nastyKeys {
		if _, found := mustGet(t, d, k); found {
			t.Fatalf("%.40q survived Flush", k)
		}
	}
	// The driver still works.
	if err := d.Set(ctx, entry("k", []byte("1"), 0)); err != nil {
		t.Fatal(err)
	}
	if _, found := mustGet(t, d, "k"); !found {
		t.Fatal("Set after Flush: miss")
	}
}

func TestClosed(t *testing.T) {
	d := newDriver(t, filecache.Options{})
	ctx := context.Background()
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	_, _, errGet := d.Get(ctx, "k")
	_, _, errPull := d.Pull(ctx, "k")
	_, errSetIf := d.SetIf(ctx, entry("k", []byte("1"), 0), driver.IfAbsent)
	_, errCAD := d.CompareAndDelete(ctx, "k", []byte("1"))
	_, errIncr := d.Increment(ctx, "k", 1, 0)
	_, errSweep := d.Sweep(ctx)
	_, errExt := d.Extend(ctx, "k", []byte("1"), time.Second)
	_, errCAS := d.CompareAndSwap(ctx, []byte("1"), entry("k", []byte("2"), 0))
	_, _, errFence := d.CreateFenced(ctx, entry("k", []byte("1"), 0))
	_, _, errTTL := d.TTL(ctx, "k")
	_, errWatch := d.Watch(ctx, "k")
	for what, err := range map[string]error{
		"Extend": errExt, "CompareAndSwap": errCAS, "CreateFenced": errFence, "TTL": errTTL, "Watch": errWatch,
		"Get": errGet, "Set": d.Set(ctx, entry("k", []byte("1"), 0)), "Delete": d.Delete(ctx, "k"),
		"SetIf": errSetIf, "CompareAndDelete": errCAD, "Increment": errIncr, "Pull": errPull,
		"DeleteNamespace": d.DeleteNamespace(ctx, "k"), "Flush": d.Flush(ctx), "Sweep": errSweep,
	} {
		if !errors.Is(err, driver.ErrClosed) {
			t.Errorf("%s after Close = %v; want driver.ErrClosed", what, err)
		}
	}
}

// TestIncrementText: a counter is the decimal text of the number, with the entry's
// expiry kept; whitespace around a stored number is accepted.
func TestIncrementText(t *testing.T) {
	clk := newClock()
	d := newDriver(t, filecache.Options{Now: clk.Now})
	ctx := context.Background()
	if err := d.Set(ctx, entry("n", []byte(" 41\n"), time.Minute)); err != nil {
		t.Fatal(err)
	}
	if n, err := d.Increment(ctx, "n", 1, time.Hour); n != 42 || err != nil {
		t.Fatalf("Increment = %d, %v; want 42", n, err)
	}
	if v, _ := mustGet(t, d, "n"); string(v) != "42" {
		t.Fatalf("the counter is stored as %q; want %q", v, "42")
	}
	clk.Add(time.Minute)
	if _, found := mustGet(t, d, "n"); found {
		t.Fatal("Increment renewed the entry's TTL")
	}
	if err := d.Set(ctx, entry("max", []byte("9223372036854775807"), 0)); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Increment(ctx, "max", 1, 0); !errors.Is(err, driver.ErrNotInteger) {
		t.Fatalf("Increment past MaxInt64 = %v; want ErrNotInteger", err)
	}
}

// TestConcurrentDrivers: two drivers on one directory in one process exclude each other
// like two processes do (each has its own lock file descriptors).
func TestConcurrentDrivers(t *testing.T) {
	dir := t.TempDir()
	ds := []*filecache.Driver{newDriver(t, filecache.Options{Dir: dir}), newDriver(t, filecache.Options{Dir: dir})}
	ctx := context.Background()
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for range 200 {
				if _, err := ds[i%2].Increment(ctx, "n", 1, 0); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if v, _ := mustGet(t, ds[0], "n"); string(v) != "1600" {
		t.Fatalf("8×200 Increments through two drivers = %s; want 1600", v)
	}
}

// TestFenceCounters: fencing numbers keep growing across Delete, Flush and a new driver,
// and a damaged counter is an error, never a restart from 1.
func TestFenceCounters(t *testing.T) {
	var log errorLog
	dir := t.TempDir()
	ctx := context.Background()
	d := newDriver(t, filecache.Options{Dir: dir, OnError: log.add})
	want := int64(0)
	create := func(d *filecache.Driver) {
		t.Helper()
		want++
		fence, ok, err := d.CreateFenced(ctx, entry("lock.f", []byte("1"), time.Minute))
		if err != nil || !ok || fence != want {
			t.Fatalf("CreateFenced = %d, %v, %v; want %d, true", fence, ok, err, want)
		}
		if _, ok, err := d.CreateFenced(ctx, entry("lock.f", []byte("1"), time.Minute)); ok || err != nil {
			t.Fatalf("CreateFenced on a held key = %v, %v; want false", ok, err)
		}
	}
	create(d)
	if err := d.Delete(ctx, "lock.f"); err != nil {
		t.Fatal(err)
	}
	create(d)
	if err := d.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	create(d)
	if _, err := d.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	d.Close()
	d2 := newDriver(t, filecache.Options{Dir: dir, OnError: log.add})
	if err := d2.Delete(ctx, "lock.f"); err != nil {
		t.Fatal(err)
	}
	create(d2)
	if err := d2.Delete(ctx, "lock.f"); err != nil {
		t.Fatal(err)
	}
	counter := filepath.Join(dir, ".fence", filecache.FileName("lock.f"))
	if err := os.WriteFile(counter, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := d2.CreateFenced(ctx, entry("lock.f", []byte("1"), time.Minute)); ok || !errors.Is(err, filecache.ErrCorrupt) {
		t.Fatalf("CreateFenced with a damaged counter = %v, %v; want an ErrCorrupt error", ok, err)
	}
	if _, found := mustGet(t, d2, "lock.f"); found {
		t.Fatal("CreateFenced wrote the key although it had no number to give")
	}
	if errs := log.take(); len(errs) != 1 {
		t.Fatalf("OnError got %v; want the damaged counter once", errs)
	}
}

// TestExtendSwapTTL: Extend and CompareAndSwap act only on the caller's live value; TTL
// reports the remaining time on the driver's clock.
func TestExtendSwapTTL(t *testing.T) {
	clk := newClock()
	d := newDriver(t, filecache.Options{Now: clk.Now})
	ctx := context.Background()
	if err := d.Set(ctx, entry("k", []byte("mine"), time.Minute)); err != nil {
		t.Fatal(err)
	}
	if ttl, found, err := d.TTL(ctx, "k"); ttl != time.Minute || !found || err != nil {
		t.Fatalf("TTL = %v, %v, %v; want 1m", ttl, found, err)
	}
	if ok, err := d.Extend(ctx, "k", []byte("other"), time.Hour); ok || err != nil {
		t.Fatalf("Extend with another value = %v, %v; want false", ok, err)
	}
	clk.Add(30 * time.Second)
	if ok, err := d.Extend(ctx, "k", []byte("mine"), time.Hour); !ok || err != nil {
		t.Fatalf("Extend = %v, %v; want true", ok, err)
	}
	if ttl, _, _ := d.TTL(ctx, "k"); ttl != time.Hour {
		t.Fatalf("TTL after Extend = %v; want 1h", ttl)
	}
	if ok, err := d.CompareAndSwap(ctx, []byte("other"), entry("k", []byte("new"), 0)); ok || err != nil {
		t.Fatalf("CompareAndSwap from another value = %v, %v; want false", ok, err)
	}
	if ok, err := d.CompareAndSwap(ctx, []byte("mine"), entry("k", []byte("new"), 0)); !ok || err != nil {
		t.Fatalf("CompareAndSwap = %v, %v; want true", ok, err)
	}
	if ttl, found, _ := d.TTL(ctx, "k"); ttl != 0 || !found {
		t.Fatalf("TTL of an entry without expiry = %v, %v; want 0, true", ttl, found)
	}
	if v, _ := mustGet(t, d, "k"); string(v) != "new" {
		t.Fatalf("after CompareAndSwap Get = %q", v)
	}
	if err := d.Set(ctx, entry("short", []byte("x"), time.Second)); err != nil {
		t.Fatal(err)
	}
	clk.Add(time.Second)
	if ok, err := d.Extend(ctx, "short", []byte("x"), time.Hour); ok || err != nil {
		t.Fatalf("Extend of an expired entry = %v, %v; want false", ok, err)
	}
	if _, found, _ := d.TTL(ctx, "short"); found {
		t.Fatal("TTL found an expired entry")
	}
}

// TestWatch: a watch fires when its key's file is removed or replaced, by this driver or
// another one (another process), and when its ctx ends or the driver closes; never for
// another key.
func TestWatch(t *testing.T) {
	for _, poll := range []bool{false, true} {
		t.Run(fmt.Sprintf("poll=%v", poll), func(t *testing.T) {
			filecache.ForcePoller(poll)
			defer filecache.ForcePoller(false)
			dir := t.TempDir()
			d := newDriver(t, filecache.Options{Dir: dir})
			other := newDriver(t, filecache.Options{Dir: dir})
			ctx := context.Background()
			set := func(key string) {
				t.Helper()
				if err := d.Set(ctx, entry(key, []byte("v"), 0)); err != nil {
					t.Fatal(err)
				}
			}
			fires := func(what string, ch <-chan struct{}) {
				t.Helper()
				select {
				case <-ch:
				case <-time.After(time.Minute): // a hang detector: inotify takes microseconds
					t.Fatalf("%s: the watch never fired", what)
				}
			}
			quiet := func(what string, ch <-chan struct{}) {
				t.Helper()
				select {
				case <-ch:
					t.Fatalf("%s: the watch fired", what)
				case <-time.After(20 * time.Millisecond): // a window for a wrong wake-up: slowness can only hide one
				}
			}
			watch := func(ctx context.Context, key string) <-chan struct{} {
				t.Helper()
				ch, err := d.Watch(ctx, key)
				if err != nil {
					t.Fatal(err)
				}
				return ch
			}
			set("k")
			set("unrelated")
			ch := watch(ctx, "k")
			quiet("before any change", ch)
			if err := other.Delete(ctx, "unrelated"); err != nil {
				t.Fatal(err)
			}
			quiet("another key deleted", ch)
			start := time.Now()
			if err := other.Delete(ctx, "k"); err != nil {
				t.Fatal(err)
			}
			fires("Delete by another driver", ch)
			t.Logf("Delete by another driver seen after %v", time.Since(start))

			set("k")
			ch = watch(ctx, "k")
			if ok, err := other.CompareAndSwap(ctx, []byte("v"), entry("k", []byte("w"), 0)); !ok || err != nil {
				t.Fatal(ok, err)
			}
			fires("CompareAndSwap", ch)

			ch = watch(ctx, "k")
			if ok, err := d.CompareAndDelete(ctx, "k", []byte("w")); !ok || err != nil {
				t.Fatal(ok, err)
			}
			fires("CompareAndDelete", ch)

			cctx, cancel := context.WithCancel(ctx)
			ch = watch(cctx, "missing")
			quiet("a missing key", ch)
			cancel()
			fires("ctx cancelled", ch)

			set("k")
			ch = watch(ctx, "k")
			if err := d.Close(); err != nil {
				t.Fatal(err)
			}
			fires("Close", ch)
			if _, err := d.Watch(ctx, "k"); !errors.Is(err, driver.ErrClosed) {
				t.Fatalf("Watch after Close = %v", err)
			}
		})
	}
}

// TestSweepBounded: one run of the background sweep examines at most its limit of
// directory entries, and the next run goes on from there.
func TestSweepBounded(t *testing.T) {
	clk := newClock()
	d := newDriver(t, filecache.Options{Now: clk.Now, SweepInterval: -1})
	ctx := context.Background()
	for i := range 30 {
		if err := d.Set(ctx, entry(fmt.Sprint(i), []byte("1"), time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	clk.Add(time.Second)
	var cur *os.File
	runs, total := 0, 0
	for {
		next, removed, err := d.SweepStep(cur, 10)
		if err != nil {
			t.Fatal(err)
		}
		runs++
		total += removed
		if removed > 10 {
			t.Fatalf("one run removed %d files; the limit is 10", removed)
		}
		if next == nil {
			break
		}
		cur = next
	}
	// 30 entries and the driver's .filecache and .lock: at least 4 runs of 10.
	if total != 30 || runs < 4 {
		t.Fatalf("%d runs removed %d files; want 30 in at least 4 runs", runs, total)
	}
}
