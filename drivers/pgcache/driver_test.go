package pgcache_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cachekit/cache"
	"github.com/cachekit/cache/driver"
	"github.com/cachekit/cache/drivers/pgcache"
	"github.com/cachekit/cache/internal/testkit/pgtest"
)

var bg = context.Background()

// row is one raw row of the entries table.
type row struct {
	value   []byte
	expires *time.Time
	dbNow   time.Time
}

func rawRow(t *testing.T, d *pgcache.Driver, key string) (row, bool) {
	t.Helper()
	var r row
	err := d.Pool().QueryRow(bg, `SELECT value, expires_at, now() FROM `+d.Table()+` WHERE key = $1`, key).Scan(&r.value, &r.expires, &r.dbNow)
	if errors.Is(err, pgx.ErrNoRows) {
		return r, false
	}
	if err != nil {
		t.Fatal(err)
	}
	return r, true
}

// TestWireFormat: the key is exactly the final key, the value the codec's bytes with no
// envelope, the expiry a timestamptz on the database's clock (NULL for none), a counter
// the decimal text of the number, a lock a JSON string that starts with the owner, and a
// fencing counter a row of the fencing table.
func TestWireFormat(t *testing.T) {
	url := pgtest.URL(t)
	p := scope("wire")
	c, d := newCache(t, url, p)
	before := time.Now()
	if err := c.Set(bg, "s", "abc", time.Minute); err != nil {
		t.Fatal(err)
	}
	r, ok := rawRow(t, d, p+".s")
	if !ok || string(r.value) != `"abc"` || r.expires == nil {
		t.Fatalf("row of s = %q, expires %v, found %v; want \"abc\" with an expiry", r.value, r.expires, ok)
	}
	checkLeft(t, "expires_at - now() on the database's clock", r.expires.Sub(r.dbNow), time.Minute, before)
	if err := c.Forever(bg, "f", map[string]int{"a": 1}); err != nil {
		t.Fatal(err)
	}
	if r, _ := rawRow(t, d, p+".f"); string(r.value) != `{"a":1}` || r.expires != nil {
		t.Fatalf("row of f = %q, expires %v; want {\"a\":1} without expiry", r.value, r.expires)
	}
	if _, err := c.Increment(bg, "n", 41); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Increment(bg, "n", 1); err != nil {
		t.Fatal(err)
	}
	if r, _ := rawRow(t, d, p+".n"); string(r.value) != "42" {
		t.Fatalf("counter row = %q; want 42", r.value)
	}
	_, err := cache.LockWith(bg, c, "job", cache.LockOptions{TTL: time.Minute, Owner: "worker-1"}, func(ctx context.Context) (int, error) {
		r, ok := rawRow(t, d, p+".job")
		if !ok || !strings.HasPrefix(string(r.value), `"worker-1#`) {
			t.Errorf("lock row = %q, %v; want a JSON string starting with the owner", r.value, ok)
		}
		return 0, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	fence, ok, err := d.CreateFenced(bg, driver.Entry{Key: p + ".fenced", Value: []byte(`"t"`), TTL: time.Minute})
	if !ok || err != nil {
		t.Fatal(ok, err)
	}
	var stored int64
	if err := d.Pool().QueryRow(bg, `SELECT fence FROM "cachekit_entries_fence" WHERE key = $1`, p+".fenced").Scan(&stored); err != nil || stored != fence {
		t.Fatalf("fencing row = %d, %v; want the number handed out, %d", stored, err, fence)
	}
	if _, ok := rawRow(t, d, p+".job"); ok {
		t.Fatal("the lock row is still there after the release")
	}
}

// TestNamespaceBoundary: DeleteNamespace(ns) removes ns and ns.*, whatever characters
// follow, and never a key that merely starts with ns; the fencing counters of the
// namespace go with it, and no other.
func TestNamespaceBoundary(t *testing.T) {
	d := newDriver(t, pgcache.Options{})
	ns := scope("nsb") + ".é"
	gone := []string{ns, ns + ".", ns + ".a", ns + ".é", ns + ".\U0010ffff", ns + "..x"}
	kept := []string{ns + "/", ns + "X", ns + "-", ns + "\u00ea", ns[:len(ns)-2], ns + "\U0010ffff"}
	for _, k := range slices.Concat(gone, kept) {
		if err := d.Set(bg, driver.Entry{Key: k, Value: []byte(`1`)}); err != nil {
			t.Fatal(err)
		}
	}
	for _, k := range []string{ns + ".lock", ns + "X.lock"} {
		if _, ok, err := d.CreateFenced(bg, driver.Entry{Key: k, Value: []byte(`"t"`), TTL: time.Minute}); !ok || err != nil {
			t.Fatal(ok, err)
		}
	}
	if err := d.DeleteNamespace(bg, ns); err != nil {
		t.Fatal(err)
	}
	for _, k := range gone {
		if _, found, _ := d.Get(bg, k); found {
			t.Errorf("%q survived DeleteNamespace(%q)", k, ns)
		}
	}
	for _, k := range kept {
		if _, found, _ := d.Get(bg, k); !found {
			t.Errorf("DeleteNamespace(%q) removed %q", ns, k)
		}
	}
	var fences []string
	rows, _ := d.Pool().Query(bg, `SELECT key FROM "cachekit_entries_fence" WHERE key LIKE $1 ORDER BY key`, strings.TrimSuffix(ns, ".é")+"%")
	fences, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil || !slices.Equal(fences, []string{ns + "X.lock"}) {
		t.Fatalf("fencing counters after DeleteNamespace = %q, %v; want only %q", fences, err, ns+"X.lock")
	}
	_ = d.DeleteNamespace(bg, ns+"X")
	_ = d.Delete(bg, kept...)
}

// TestScanPrefix: Scan lists exactly the live keys with the prefix, across pages, for
// prefixes that end in a multi-byte character and in U+10FFFF.
func TestScanPrefix(t *testing.T) {
	d := newDriver(t, pgcache.Options{})
	base := scope("scan")
	t.Cleanup(func() { _ = d.DeleteNamespace(bg, base) })
	var entries []driver.Entry
	var want []string
	for i := range 2500 {
		k := fmt.Sprintf("%s.p.%04d", base, i)
		entries = append(entries, driver.Entry{Key: k, Value: []byte(`1`)})
		want = append(want, k)
	}
	for _, k := range []string{base + ".q", base + ".p", base + ".o"} {
		entries = append(entries, driver.Entry{Key: k, Value: []byte(`1`)})
	}
	want = append(want, base+".p")
	entries = append(entries, driver.Entry{Key: base + ".p.expired", Value: []byte(`1`), TTL: time.Microsecond})
	if err := d.SetMany(bg, entries); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Millisecond)
	var got []string
	if err := d.Scan(bg, base+".p", func(k string) bool { got = append(got, k); return true }); err != nil {
		t.Fatal(err)
	}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("Scan(%q): %d keys; want %d (first %q, last %q)", base+".p", len(got), len(want), got[:min(3, len(got))], got[max(0, len(got)-3):])
	}
	for _, suffix := range []string{"é", "\U0010ffff"} {
		in, out := base+".u"+suffix+"1", base+".u"+string([]rune(suffix)[0]+1)
		if suffix == "\U0010ffff" {
			out = base + ".v"
		}
		for _, k := range []string{in, out} {
			if err := d.Set(bg, driver.Entry{Key: k, Value: []byte(`1`)}); err != nil {
				t.Fatal(err)
			}
		}
		got = nil
		if err := d.Scan(bg, base+".u"+suffix, func(k string) bool { got = append(got, k); return true }); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, []string{in}) {
			t.Fatalf("Scan(%q) = %q; want only %q", base+".u"+suffix, got, in)
		}
	}
}

// TestIncrementEdges: bytes that are not an integer (even ones that are not UTF-8) and a
// sum outside int64 are ErrNotInteger and leave the value; an expired counter counts as
// missing and gets the new TTL; the extremes of int64 are exact.
func TestIncrementEdges(t *testing.T) {
	d := newDriver(t, pgcache.Options{})
	p := scope("incr")
	t.Cleanup(func() { _ = d.DeleteNamespace(bg, p) })
	for _, v := range [][]byte{{0xff, 0xfe}, []byte(`"7"`), []byte(`1.5`), []byte(` 7`), []byte(`12345678901234567890`), {}} {
		k := p + ".bad"
		if err := d.Set(bg, driver.Entry{Key: k, Value: v}); err != nil {
			t.Fatal(err)
		}
		if _, err := d.Increment(bg, k, 1, 0); !errors.Is(err, driver.ErrNotInteger) {
			t.Errorf("Increment of %q: %v; want ErrNotInteger", v, err)
		}
		if got, _, _ := d.Get(bg, k); string(got.([]byte)) != string(v) {
			t.Errorf("a failed Increment changed %q to %q", v, got)
		}
	}
	k := p + ".max"
	if n, err := d.Increment(bg, k, math.MaxInt64, 0); n != math.MaxInt64 || err != nil {
		t.Fatalf("Increment(MaxInt64) = %d, %v", n, err)
	}
	if _, err := d.Increment(bg, k, 1, 0); !errors.Is(err, driver.ErrNotInteger) {
		t.Fatalf("Increment past MaxInt64: %v; want ErrNotInteger", err)
	}
	if n, err := d.Increment(bg, k, math.MinInt64, 0); n != -1 || err != nil {
		t.Fatalf("MaxInt64 + MinInt64 = %d, %v; want -1", n, err)
	}
	if n, err := d.Increment(bg, k, math.MinInt64+1, 0); n != math.MinInt64 || err != nil {
		t.Fatalf("-1 + MinInt64+1 = %d, %v; want MinInt64", n, err)
	}
	k = p + ".exp"
	if err := d.Set(bg, driver.Entry{Key: k, Value: []byte(`100`), TTL: time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Millisecond)
	if n, err := d.Increment(bg, k, 5, time.Hour); n != 5 || err != nil {
		t.Fatalf("Increment of an expired counter = %d, %v; want 5 (it counts as missing)", n, err)
	}
	if ttl, ok, err := d.TTL(bg, k); !ok || err != nil || ttl <= 59*time.Minute || ttl > time.Hour {
		t.Fatalf("TTL of the recreated counter = %v, %v, %v; want the new key's hour", ttl, ok, err)
	}
	if n, err := d.Increment(bg, k, 1, time.Second); n != 6 || err != nil {
		t.Fatal(n, err)
	}
	if ttl, _, _ := d.TTL(bg, k); ttl <= 59*time.Minute {
		t.Fatalf("Increment of a live counter changed its TTL to %v", ttl)
	}
}

// TestUndecodableBytes: bytes in the table that the codec cannot read (another program
// wrote them) are an error for Get and Remember, never a miss, and Remember does not
// write over them.
func TestUndecodableBytes(t *testing.T) {
	p := scope("undec")
	c, d := newCache(t, pgtest.URL(t), p)
	if err := d.Set(bg, driver.Entry{Key: p + ".x", Value: []byte{0xff, 'n', 'o', 't', ' ', 'j', 's', 'o', 'n'}}); err != nil {
		t.Fatal(err)
	}
	var s string
	if _, err := c.Get(bg, "x", &s); err == nil {
		t.Fatal("Get of bytes the codec cannot read: nil error")
	}
	if _, err := cache.Remember(bg, c, "x", time.Minute, func(context.Context) (string, error) { return "mine", nil }); err == nil {
		t.Fatal("Remember over bytes the codec cannot read: nil error")
	}
	if v, _, _ := d.Get(bg, p+".x"); v.([]byte)[0] != 0xff {
		t.Fatalf("the bytes were overwritten: %q", v)
	}
}

// TestTTLAndExpiry: TTL reads the database clock's remaining time; an expired row is a
// miss for every read and is free for Create, Increment and CreateFenced.
func TestTTLAndExpiry(t *testing.T) {
	d := newDriver(t, pgcache.Options{})
	p := scope("ttl")
	t.Cleanup(func() { _ = d.DeleteNamespace(bg, p) })
	k := p + ".k"
	if err := d.Set(bg, driver.Entry{Key: k, Value: []byte(`1`), TTL: 300 * time.Microsecond}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Millisecond)
	if _, found, err := d.Get(bg, k); found || err != nil {
		t.Fatalf("Get of an expired row = %v, %v", found, err)
	}
	if err := d.Set(bg, driver.Entry{Key: k, Value: []byte(`1`), TTL: time.Microsecond}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Millisecond)
	for name, f := range map[string]func() (bool, error){
		"Pull":             func() (bool, error) { _, ok, err := d.Pull(bg, k); return ok, err },
		"TTL":              func() (bool, error) { _, ok, err := d.TTL(bg, k); return ok, err },
		"CompareAndDelete": func() (bool, error) { return d.CompareAndDelete(bg, k, []byte(`1`)) },
		"Extend":           func() (bool, error) { return d.Extend(bg, k, []byte(`1`), time.Minute) },
		"Update":           func() (bool, error) { return d.SetIf(bg, driver.Entry{Key: k, Value: []byte(`2`)}, driver.IfPresent) },
		"CompareAndSwap": func() (bool, error) {
			return d.CompareAndSwap(bg, []byte(`1`), driver.Entry{Key: k, Value: []byte(`2`), KeepTTL: true})
		},
	} {
		if ok, err := f(); ok || err != nil {
			t.Errorf("%s of an expired row = %v, %v; want false, nil", name, ok, err)
		}
	}
	if vals, found, err := d.GetMany(bg, []string{k}); err != nil || found[0] || vals[0] != nil {
		t.Fatalf("GetMany of an expired row = %v, %v, %v", vals, found, err)
	}
	before := time.Now()
	if _, ok, err := d.CreateFenced(bg, driver.Entry{Key: k, Value: []byte(`"t"`), TTL: time.Minute}); !ok || err != nil {
		t.Fatalf("CreateFenced over an expired row = %v, %v", ok, err)
	}
	ttl, ok, err := d.TTL(bg, k)
	if !ok || err != nil {
		t.Fatalf("TTL = %v, %v, %v", ttl, ok, err)
	}
	checkLeft(t, "TTL after CreateFenced", ttl, time.Minute, before)
	if ok, err := d.CompareAndSwap(bg, []byte(`"t"`), driver.Entry{Key: k, Value: []byte(`"u"`), KeepTTL: true}); !ok || err != nil {
		t.Fatal(ok, err)
	}
	if ttl, _, err = d.TTL(bg, k); err != nil {
		t.Fatal(err)
	}
	checkLeft(t, "TTL after CompareAndSwap with KeepTTL", ttl, time.Minute, before)
	if ok, err := d.CompareAndSwap(bg, []byte(`"u"`), driver.Entry{Key: k, Value: []byte(`"v"`)}); !ok || err != nil {
		t.Fatal(ok, err)
	}
	if ttl, ok, _ := d.TTL(bg, k); !ok || ttl != 0 {
		t.Fatalf("CompareAndSwap with TTL 0 left TTL %v; want 0 (no expiry)", ttl)
	}
}

// TestSweep: the background sweep deletes expired rows in bounded batches, reports
// each once, and leaves live rows; Close stops it.
func TestSweep(t *testing.T) {
	// A table of its own: on the default one, the sweepers of other tests' drivers (or
	// of other packages' tests on the same server) may remove this test's expired rows
	// first, and this driver would report fewer than it should.
	table := "sweep_" + strings.ToLower(scope("t"))
	url := pgtest.URL(t)
	t.Cleanup(func() { exec(t, url, `DROP TABLE IF EXISTS "`+table+`", "`+table+`_fence"`) }) // after the driver's Close
	d := newDriver(t, pgcache.Options{URL: url, Table: table, SweepInterval: 20 * time.Millisecond, SweepBatch: 7})
	p := scope("sweep")
	var mu sync.Mutex
	reported := map[string]int{}
	d.OnExpire(func(k string) {
		if strings.HasPrefix(k, p+".") {
			mu.Lock()
			reported[k]++
			mu.Unlock()
		}
	})
	var entries []driver.Entry
	for i := range 100 {
		entries = append(entries, driver.Entry{Key: p + ".e" + strconv.Itoa(i), Value: []byte(`1`), TTL: time.Millisecond})
	}
	entries = append(entries, driver.Entry{Key: p + ".live", Value: []byte(`1`), TTL: time.Hour}, driver.Entry{Key: p + ".forever", Value: []byte(`1`)})
	if err := d.SetMany(bg, entries); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(hangAfter) // a hang detector: the sweep takes milliseconds
	for {
		var n int
		if err := d.Pool().QueryRow(bg, `SELECT count(*) FROM `+d.Table()+` WHERE key >= $1 AND key < $2`, p+".", p+"/").Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d rows left %v later; want the 2 live ones", n, hangAfter)
		}
		time.Sleep(20 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(reported) != 100 {
		t.Fatalf("%d expired keys reported; want 100", len(reported))
	}
	for k, n := range reported {
		if n != 1 {
			t.Fatalf("%q reported %d times", k, n)
		}
	}
}

// TestTables: a table of its own (Options.Table) shares nothing with the default one;
// invalid names are refused; with SkipCreateTable a missing table is an error until
// Schema's DDL creates it.
func TestTables(t *testing.T) {
	url := pgtest.URL(t)
	for _, name := range []string{"bad-name", `x"; DROP TABLE y; --`, "a.b.c", strings.Repeat("t", 60)} {
		if _, err := pgcache.New(pgcache.Options{URL: url, Table: name}); err == nil {
			t.Errorf("New with Table %q: nil error", name)
		}
	}
	table := "t_" + strings.ToLower(scope("own"))
	own := newDriver(t, pgcache.Options{Table: table})
	def := newDriver(t, pgcache.Options{})
	k := scope("k")
	if err := own.Set(bg, driver.Entry{Key: k, Value: []byte(`1`)}); err != nil {
		t.Fatal(err)
	}
	if _, found, _ := def.Get(bg, k); found {
		t.Fatal("the default table sees another table's key")
	}
	if err := own.Flush(bg); err != nil {
		t.Fatal(err)
	}
	exec(t, url, `DROP TABLE "`+table+`", "`+table+`_fence"`)

	manual := "m_" + strings.ToLower(scope("manual"))
	md := newDriver(t, pgcache.Options{Table: manual, SkipCreateTable: true})
	if err := md.Set(bg, driver.Entry{Key: "k", Value: []byte(`1`)}); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("Set on a missing table with SkipCreateTable: %v; want relation does not exist", err)
	}
	ddl := pgcache.Schema(manual, true)
	if !strings.Contains(ddl, `CREATE UNLOGGED TABLE IF NOT EXISTS "`+manual+`"`) || !strings.Contains(ddl, `"`+manual+`_fence"`) {
		t.Fatalf("Schema = %s", ddl)
	}
	for stmt := range strings.SplitSeq(ddl, ";\n") {
		if strings.TrimSpace(stmt) != "" {
			exec(t, url, stmt)
		}
	}
	t.Cleanup(func() { exec(t, url, `DROP TABLE "`+manual+`", "`+manual+`_fence"`) })
	if err := md.Set(bg, driver.Entry{Key: "k", Value: []byte(`1`)}); err != nil {
		t.Fatalf("Set after the migration: %v", err)
	}
	var persistence string
	if err := md.Pool().QueryRow(bg, `SELECT relpersistence::text FROM pg_class WHERE oid = to_regclass($1)`, `"`+manual+`"`).Scan(&persistence); err != nil || persistence != "u" {
		t.Fatalf("relpersistence = %q, %v; want u (UNLOGGED)", persistence, err)
	}
}

// TestURL: a bad URL is an error that does not repeat the password; Close closes the
// pool the driver built, and every method then matches driver.ErrClosed.
func TestURL(t *testing.T) {
	for _, u := range []string{"postgres://user:s3cret@host:notaport/db", "postgres://user:s3cret@[::1/db", "host=x password=s3cret port=abc"} {
		_, err := pgcache.New(pgcache.Options{URL: u})
		if err == nil || strings.Contains(err.Error(), "s3cret") {
			t.Errorf("New(%q) = %v; want an error without the password", u, err)
		}
	}
	if _, err := pgcache.New(pgcache.Options{}); err == nil {
		t.Error("New without Pool or URL: nil error")
	}
	d, err := pgcache.New(pgcache.Options{URL: pgtest.URL(t)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Watch(bg, "k"); err != nil { // start the listener too
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatalf("a second Close: %v", err)
	}
	if err := d.Pool().Ping(bg); err == nil {
		t.Fatal("the pool the driver built is still open after Close")
	}
	if _, _, err := d.Get(bg, "k"); !errors.Is(err, driver.ErrClosed) {
		t.Fatalf("Get after Close: %v", err)
	}
	if _, err := d.Watch(bg, "k"); !errors.Is(err, driver.ErrClosed) {
		t.Fatalf("Watch after Close: %v", err)
	}
}

// TestWatch: a watch wakes on a CompareAndDelete and a CompareAndSwap by another driver
// (another connection, as another process would be), for long keys too, and not on a
// failed one; a watch ends with its ctx.
func TestWatch(t *testing.T) {
	w, other := newDriver(t, pgcache.Options{}), newDriver(t, pgcache.Options{})
	p := scope("watch")
	t.Cleanup(func() { _ = w.DeleteNamespace(bg, p) })
	for _, k := range []string{p + ".k", p + "." + strings.Repeat("l", 5000)} {
		if err := other.Set(bg, driver.Entry{Key: k, Value: []byte(`"a"`)}); err != nil {
			t.Fatal(err)
		}
		ch, err := w.Watch(bg, k)
		if err != nil {
			t.Fatal(err)
		}
		if ok, err := other.CompareAndDelete(bg, k, []byte(`"b"`)); ok || err != nil {
			t.Fatal(ok, err)
		}
		select {
		case <-ch:
			t.Fatal("a failed CompareAndDelete woke the watch")
		case <-time.After(50 * time.Millisecond): // a window for a wrong wake-up: slowness can only hide one, never fail the test
		}
		start := time.Now()
		if ok, err := other.CompareAndDelete(bg, k, []byte(`"a"`)); !ok || err != nil {
			t.Fatal(ok, err)
		}
		select {
		case <-ch:
			t.Logf("key of %d bytes: woken %v after the release began", len(k), time.Since(start))
		case <-time.After(hangAfter): // a hang detector: NOTIFY takes milliseconds
			t.Fatalf("key of %d bytes: the release did not wake the watch", len(k))
		}
		if err := other.Set(bg, driver.Entry{Key: k, Value: []byte(`"a"`)}); err != nil {
			t.Fatal(err)
		}
		ch, err = w.Watch(bg, k)
		if err != nil {
			t.Fatal(err)
		}
		if ok, err := other.CompareAndSwap(bg, []byte(`"a"`), driver.Entry{Key: k, Value: []byte(`"c"`)}); !ok || err != nil {
			t.Fatal(ok, err)
		}
		select {
		case <-ch:
		case <-time.After(hangAfter): // a hang detector: NOTIFY takes milliseconds
			t.Fatal("a CompareAndSwap did not wake the watch")
		}
	}
	ctx, cancel := context.WithCancel(bg)
	ch, err := w.Watch(ctx, p+".never")
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	select {
	case <-ch:
	case <-time.After(hangAfter): // a hang detector
		t.Fatal("a watch whose ctx ended stayed open")
	}
}

// TestKeysThatAreNotText: a key that is not valid UTF-8, or holds a NUL byte, is an error
// from the database for reads and writes alike, never a miss or a silent change.
func TestKeysThatAreNotText(t *testing.T) {
	d := newDriver(t, pgcache.Options{})
	for _, k := range []string{"bad\xff", "nul\x00byte"} {
		if err := d.Set(bg, driver.Entry{Key: k, Value: []byte(`1`)}); err == nil {
			t.Errorf("Set(%q): nil error", k)
		}
		if _, found, err := d.Get(bg, k); err == nil || found {
			t.Errorf("Get(%q) = %v, %v; want an error", k, found, err)
		}
		if ok, err := d.SetIf(bg, driver.Entry{Key: k, Value: []byte(`1`), TTL: time.Minute}, driver.IfAbsent); err == nil || ok {
			t.Errorf("SetIf(%q) = %v, %v; want an error", k, ok, err)
		}
	}
}

// checkLeft checks left, what is left of a TTL of ttl set after the instant before: at
// most ttl, and at least ttl less the time since before (1 ms for the rounding of the
// database's timestamps): the TTL that was set, with no bound on how long the calls
// took.
func checkLeft(t *testing.T, what string, left, ttl time.Duration, before time.Time) {
	t.Helper()
	if lo := ttl - time.Since(before) - time.Millisecond; left < lo || left > ttl {
		t.Fatalf("%s = %v; want within [%v, %v]: the TTL set, less the time since", what, left, lo, ttl)
	}
}

// TestWatchAcrossTableSpellings: a driver that names its table with the schema
// ("public.cachekit_entries") and one that names it through the search_path
// ("cachekit_entries") share the release channel: a release by one wakes the other's
// watch.
func TestWatchAcrossTableSpellings(t *testing.T) {
	w := newDriver(t, pgcache.Options{Table: "public." + pgcache.DefaultTable})
	other := newDriver(t, pgcache.Options{})
	if w.Channel() != other.Channel() {
		t.Fatalf("channels %q and %q: one table, two channels", w.Channel(), other.Channel())
	}
	p := scope("spelling")
	t.Cleanup(func() { _ = w.DeleteNamespace(bg, p) })
	k := p + ".k"
	if err := other.Set(bg, driver.Entry{Key: k, Value: []byte(`"a"`)}); err != nil {
		t.Fatal(err)
	}
	ch, err := w.Watch(bg, k)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := other.CompareAndDelete(bg, k, []byte(`"a"`)); !ok || err != nil {
		t.Fatal(ok, err)
	}
	select {
	case <-ch:
	case <-time.After(hangAfter): // a hang detector: NOTIFY takes milliseconds
		t.Fatal("a release through the other spelling of the table did not wake the watch")
	}
}
