package pgcache_test

import (
	"strings"
	"testing"
	"time"

	"github.com/cachekit/cache/driver"
	"github.com/cachekit/cache/drivers/pgcache"
	"github.com/cachekit/cache/internal/pgtest"
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
