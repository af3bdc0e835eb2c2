package pgcache_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cachekit/cache"
	"github.com/cachekit/cache/driver"
	"github.com/cachekit/cache/drivers/pgcache"
	"github.com/cachekit/cache/internal/testkit/pgtest"
)

// TestTableNamesNeverMeet: the relations of the table "X" are "X", "X_fence" (the
// fencing counters) and "X_expires_at" (the expiry index), so a table name that ends in
// "_fence" or "_expires_at" is refused by New (and Schema), with an error that says why;
// a name that merely looks like one ("X_fences", "X_Fence") is a table of its own, and a
// Flush of "X" leaves its rows.
func TestTableNamesNeverMeet(t *testing.T) {
	url := pgtest.URL(t)
	x := "t_" + strings.ToLower(scope("meet"))
	for _, name := range []string{x + "_fence", "app." + x + "_fence", x + "_expires_at", "cachekit_entries_fence"} {
		_, err := pgcache.New(pgcache.Options{URL: url, Table: name})
		if err == nil {
			t.Errorf("New with Table %q: nil error; want it refused", name)
			continue
		}
		suffix := "_fence"
		if strings.HasSuffix(name, "_expires_at") {
			suffix = "_expires_at"
		}
		if msg := err.Error(); !strings.Contains(msg, `may not end in "`+suffix+`"`) || !strings.Contains(msg, "choose another name") {
			t.Errorf("New with Table %q: %v; want an error that says the name may not end in %q", name, err, suffix)
		}
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Schema(%q) did not panic", name)
				}
			}()
			pgcache.Schema(name, false)
		}()
	}

	// Names near the refused ones are tables of their own.
	others := []string{x + "_fences", x + "_Fence", x + "_fence2"}
	dx := newDriver(t, pgcache.Options{Table: x})
	t.Cleanup(func() { exec(t, url, `DROP TABLE IF EXISTS "`+x+`", "`+x+`_fence"`) })
	if err := dx.Set(bg, driver.Entry{Key: "k", Value: []byte(`"x"`)}); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := dx.CreateFenced(bg, driver.Entry{Key: "lock", Value: []byte(`"x"`), TTL: time.Minute}); !ok || err != nil {
		t.Fatal(ok, err)
	}
	near := map[string]*pgcache.Driver{}
	for _, name := range others {
		d := newDriver(t, pgcache.Options{Table: name})
		near[name] = d
		t.Cleanup(func() { exec(t, url, `DROP TABLE IF EXISTS "`+name+`", "`+name+`_fence"`) })
		if err := d.Set(bg, driver.Entry{Key: "k", Value: []byte(`"other"`)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := dx.Flush(bg); err != nil {
		t.Fatal(err)
	}
	if _, found, err := dx.Get(bg, "k"); found || err != nil {
		t.Fatalf("Get on %q after its Flush = %v, %v; want a miss", x, found, err)
	}
	for name, d := range near {
		if v, found, err := d.Get(bg, "k"); !found || err != nil || string(v.([]byte)) != `"other"` {
			t.Errorf("Get on %q after a Flush of %q = %s, %v, %v; want its own value", name, x, v, found, err)
		}
	}
}

// TestDroppedTable: a table dropped under a live driver fails the call that finds it
// missing with an error matching ErrMissingTable that says what happens next, and the
// next call creates it again (CREATE TABLE IF NOT EXISTS) and works: writes, reads,
// locks and fencing numbers that still grow. It is the same when only the fencing table
// is dropped.
func TestDroppedTable(t *testing.T) {
	url := pgtest.URL(t)
	table := "t_" + strings.ToLower(scope("dropped"))
	t.Cleanup(func() { exec(t, url, `DROP TABLE IF EXISTS "`+table+`", "`+table+`_fence"`) })
	d := newDriver(t, pgcache.Options{Table: table})
	c, err := cache.New(cache.Config{Drivers: map[string]cache.Driver{"pg": d}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if err := c.Set(bg, "k", "v", time.Minute); err != nil {
		t.Fatal(err)
	}
	fence1, ok, err := d.CreateFenced(bg, driver.Entry{Key: "f", Value: []byte(`"t"`), TTL: time.Minute})
	if !ok || err != nil {
		t.Fatal(ok, err)
	}

	exec(t, url, `DROP TABLE "`+table+`", "`+table+`_fence"`)
	var s string
	_, err = c.Get(bg, "k", &s)
	if !errors.Is(err, pgcache.ErrMissingTable) || !strings.Contains(err.Error(), "creates it again on its next call") {
		t.Fatalf("Get on a dropped table: %v; want ErrMissingTable, saying the next call creates it", err)
	}
	t.Logf("the call that found the table dropped: %v", err)
	if found, err := c.Get(bg, "k", &s); found || err != nil {
		t.Fatalf("Get after the table was created again = %v, %v; want a miss (the rows went with the table)", found, err)
	}
	if err := c.Set(bg, "k", "w", time.Minute); err != nil {
		t.Fatal(err)
	}
	if found, err := c.Get(bg, "k", &s); !found || err != nil || s != "w" {
		t.Fatalf("Get = %q, %v, %v; want w", s, found, err)
	}
	out, err := cache.Lock(bg, c, "job", time.Minute, func(context.Context) (int, error) { return 1, nil })
	if !out.Acquired || err != nil {
		t.Fatalf("Lock on the table created again = %+v, %v", out, err)
	}

	// Only the fencing table dropped: the fenced acquisition that finds it missing fails,
	// the next one creates it and hands out a number above the last.
	exec(t, url, `DROP TABLE "`+table+`_fence"`)
	_, _, err = d.CreateFenced(bg, driver.Entry{Key: "f2", Value: []byte(`"t"`), TTL: time.Minute})
	if !errors.Is(err, pgcache.ErrMissingTable) {
		t.Fatalf("CreateFenced with the fencing table dropped: %v; want ErrMissingTable", err)
	}
	fence2, ok, err := d.CreateFenced(bg, driver.Entry{Key: "f2", Value: []byte(`"t"`), TTL: time.Minute})
	if !ok || err != nil {
		t.Fatal(ok, err)
	}
	if fence2 <= fence1 {
		t.Fatalf("fencing number after the fencing table was created again %d <= %d before", fence2, fence1)
	}
	if found, err := c.Get(bg, "k", &s); !found || err != nil || s != "w" {
		t.Fatalf("Get after the fencing table was created again = %q, %v, %v; want w (the entries table was left alone)", s, found, err)
	}
}

// TestDroppedTableConcurrent: drivers in several pools (as several processes would be)
// write concurrently into a table dropped under them: each call fails at most once per
// drop (ErrMissingTable), and every write that succeeded is there at the end, so no
// driver's re-creation dropped or emptied a table another had created and written
// meanwhile.
func TestDroppedTableConcurrent(t *testing.T) {
	url := pgtest.URL(t)
	table := "t_" + strings.ToLower(scope("dropconc"))
	t.Cleanup(func() { exec(t, url, `DROP TABLE IF EXISTS "`+table+`", "`+table+`_fence"`) })
	const drivers, writers, per = 3, 4, 25
	ds := make([]*pgcache.Driver, drivers)
	for i := range ds {
		ds[i] = newDriver(t, pgcache.Options{Table: table})
		if err := ds[i].Set(bg, driver.Entry{Key: "warm", Value: []byte(`1`)}); err != nil {
			t.Fatal(err)
		}
	}
	exec(t, url, `DROP TABLE "`+table+`", "`+table+`_fence"`)

	var mu sync.Mutex
	var written []string
	missing := 0
	var wg sync.WaitGroup
	for i, d := range ds {
		for w := range writers {
			wg.Go(func() {
				for n := range per {
					key := fmt.Sprintf("k.%d.%d.%d", i, w, n)
					err := d.Set(bg, driver.Entry{Key: key, Value: []byte(`1`)})
					if errors.Is(err, pgcache.ErrMissingTable) {
						mu.Lock()
						missing++
						mu.Unlock()
						err = d.Set(bg, driver.Entry{Key: key, Value: []byte(`1`)}) // the next call creates it
					}
					if err != nil {
						t.Errorf("Set %s: %v", key, err)
						return
					}
					mu.Lock()
					written = append(written, key)
					mu.Unlock()
				}
			})
		}
	}
	wg.Wait()
	t.Logf("%d writes, %d calls found the table missing", len(written), missing)
	if missing == 0 {
		t.Error("no call found the table missing: the drop did not happen under the drivers")
	}
	for _, key := range written {
		if _, found, err := ds[0].Get(bg, key); !found || err != nil {
			t.Errorf("%s was written but is gone: %v, %v", key, found, err)
		}
	}
}

// TestDroppedTableSkipCreate: with SkipCreateTable the driver never creates a table: a
// dropped one fails every call with ErrMissingTable, an error that names the DDL to run,
// until the migration runs again.
func TestDroppedTableSkipCreate(t *testing.T) {
	url := pgtest.URL(t)
	table := "t_" + strings.ToLower(scope("dropskip"))
	t.Cleanup(func() { exec(t, url, `DROP TABLE IF EXISTS "`+table+`", "`+table+`_fence"`) })
	migrate := func() {
		for stmt := range strings.SplitSeq(pgcache.Schema(table, false), ";\n") {
			if strings.TrimSpace(stmt) != "" {
				exec(t, url, stmt)
			}
		}
	}
	migrate()
	d := newDriver(t, pgcache.Options{Table: table, SkipCreateTable: true})
	if err := d.Set(bg, driver.Entry{Key: "k", Value: []byte(`1`)}); err != nil {
		t.Fatal(err)
	}
	exec(t, url, `DROP TABLE "`+table+`"`)
	for i := range 3 {
		_, _, err := d.Get(bg, "k")
		want := fmt.Sprintf("pgcache.Schema(%q, false)", table)
		if !errors.Is(err, pgcache.ErrMissingTable) || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "does not exist") {
			t.Fatalf("Get %d on a dropped table with SkipCreateTable: %v; want ErrMissingTable naming %s", i, err, want)
		}
		if i == 0 {
			t.Logf("with SkipCreateTable: %v", err)
		}
	}
	var exists bool
	if err := d.Pool().QueryRow(bg, `SELECT to_regclass($1) IS NOT NULL`, `"`+table+`"`).Scan(&exists); err != nil || exists {
		t.Fatalf("the table exists (%v, %v): a driver with SkipCreateTable created it", exists, err)
	}
	migrate()
	if err := d.Set(bg, driver.Entry{Key: "k", Value: []byte(`1`)}); err != nil {
		t.Fatalf("Set after the migration ran again: %v", err)
	}
}
