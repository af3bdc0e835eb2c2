package pgcache_test

import (
	"context"
	"errors"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/cachekit/cache"
	"github.com/cachekit/cache/driver"
	"github.com/cachekit/cache/drivers/pgcache"
	"github.com/cachekit/cache/internal/testkit/pgtest"
)

func doctor(t *testing.T, d *pgcache.Driver) []driver.Finding {
	t.Helper()
	fs := d.Doctor(context.Background())
	for _, f := range fs {
		t.Log(f)
	}
	return fs
}

// wantFinding checks the severity of check's finding and that its message holds each of
// words.
func wantFinding(t *testing.T, fs []driver.Finding, check string, sev driver.Severity, words ...string) {
	t.Helper()
	for _, f := range fs {
		if f.Check != check {
			continue
		}
		if f.Severity != sev {
			t.Errorf("%s: severity %v, want %v: %v", check, f.Severity, sev, f)
		}
		for _, w := range words {
			if !strings.Contains(f.Message, w) {
				t.Errorf("%s: message %q does not say %q", check, f.Message, w)
			}
		}
		if sev != driver.SeverityOK && f.Fix == "" {
			t.Errorf("%s: a %v without a fix: %v", check, sev, f)
		}
		return
	}
	t.Errorf("no %q finding in %v", check, fs)
}

// create makes d create its table.
func create(t *testing.T, d *pgcache.Driver) {
	t.Helper()
	if _, _, err := d.Get(context.Background(), "k"); err != nil {
		t.Fatal(err)
	}
}

func TestDoctorLoggedTable(t *testing.T) {
	table := scope("doctor")
	d := newDriver(t, pgcache.Options{Table: table})
	fs := doctor(t, d)
	wantFinding(t, fs, "table", driver.SeverityOK, "does not exist yet")
	wantFinding(t, fs, "unlogged", driver.SeverityOK, "created logged")
	create(t, d)
	fs = doctor(t, d)
	if w := driver.Worst(fs); w != driver.SeverityOK {
		t.Errorf("Worst = %v on a logged table, want ok", w)
	}
	wantFinding(t, fs, "version", driver.SeverityOK, "PostgreSQL ")
	wantFinding(t, fs, "synchronous_commit", driver.SeverityOK, "synchronous_commit on")
	wantFinding(t, fs, "table", driver.SeverityOK, table+" exists")
	wantFinding(t, fs, "owner", driver.SeverityOK, "owned by postgres")
	wantFinding(t, fs, "unlogged", driver.SeverityOK, "is logged")
}

func TestDoctorUnloggedTable(t *testing.T) {
	d := newDriver(t, pgcache.Options{Table: scope("doctor"), Unlogged: true})
	wantFinding(t, doctor(t, d), "unlogged", driver.SeverityWarning, "will be created UNLOGGED")
	create(t, d)
	fs := doctor(t, d)
	wantFinding(t, fs, "unlogged", driver.SeverityWarning, "is UNLOGGED", "Once")
	if w := driver.Worst(fs); w != driver.SeverityWarning {
		t.Errorf("Worst = %v, want warning", w)
	}
}

func TestDoctorMissingTable(t *testing.T) {
	d := newDriver(t, pgcache.Options{Table: scope("doctor"), SkipCreateTable: true})
	wantFinding(t, doctor(t, d), "table", driver.SeverityError, "does not exist", "SkipCreateTable")
}

func TestDoctorSynchronousCommitOff(t *testing.T) {
	// pgx sends an unknown URL parameter as a run-time setting of the session.
	d := newDriver(t, pgcache.Options{URL: pgtest.URL(t) + "&synchronous_commit=off"})
	wantFinding(t, doctor(t, d), "synchronous_commit", driver.SeverityWarning, "synchronous_commit off", "crash")
}

func TestDoctorPrivileges(t *testing.T) {
	table := scope("doctor")
	owner := newDriver(t, pgcache.Options{Table: table})
	create(t, owner)
	role := strings.ToLower(scope("doctor_role"))
	exec := func(sql string) {
		t.Helper()
		if _, err := owner.Pool().Exec(context.Background(), sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	exec("CREATE ROLE " + role + " LOGIN")
	t.Cleanup(func() {
		exec("DROP OWNED BY " + role)
		exec("DROP ROLE " + role)
	})
	u, err := url.Parse(pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.User(role)
	d := newDriver(t, pgcache.Options{URL: u.String(), Table: table})
	wantFinding(t, doctor(t, d), "owner", driver.SeverityError, "owned by postgres", "lacks SELECT, INSERT, UPDATE, DELETE, TRUNCATE")
	exec(`GRANT SELECT, INSERT, UPDATE, DELETE ON "` + table + `" TO ` + role)
	wantFinding(t, doctor(t, d), "owner", driver.SeverityWarning, "lacks TRUNCATE")
}

func TestDoctorUnreachable(t *testing.T) {
	d := newDriver(t, pgcache.Options{URL: "postgres://app@" + closedAddr(t) + "/app?connect_timeout=5"})
	fs := doctor(t, d)
	wantFinding(t, fs, "connection", driver.SeverityError, "cannot reach PostgreSQL", "connection refused")
}

// closedAddr returns a loopback address where nothing listens.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}

// TestConnectErrorShort: a refused connection is said once, with the address, the user
// and the database, although pgx tried twice (TLS, then plain, with sslmode=prefer).
func TestConnectErrorShort(t *testing.T) {
	addr := closedAddr(t)
	d := newDriver(t, pgcache.Options{URL: "postgres://app@" + addr + "/appdb?sslmode=prefer&connect_timeout=5"})
	_, _, err := d.Get(context.Background(), "k")
	if err == nil {
		t.Fatal("Get against a closed port succeeded")
	}
	msg := err.Error()
	t.Log(msg)
	want := "connect to " + addr + " (user=app database=appdb): connection refused"
	if !strings.Contains(msg, want) {
		t.Errorf("error %q does not say %q", msg, want)
	}
	if n := strings.Count(msg, "connection refused"); n != 1 {
		t.Errorf("error says \"connection refused\" %d times, want once: %q", n, msg)
	}
	var ce *pgconn.ConnectError
	if !errors.As(err, &ce) {
		t.Errorf("the short error does not wrap pgx's *pgconn.ConnectError: %#v", err)
	}
}

// TestCheckOnStart: with cache.Config.CheckOnStart the manager runs the driver's checks
// once and reports the UNLOGGED table's warning as an EventFinding; after Close, nothing.
func TestCheckOnStart(t *testing.T) {
	table := scope("doctor")
	create(t, newDriver(t, pgcache.Options{Table: table, Unlogged: true}))
	got := make(chan cache.Event, 16)
	c, err := cache.New(cache.Config{
		Drivers:      map[string]cache.Driver{"pg": newDriver(t, pgcache.Options{Table: table})},
		CheckOnStart: true,
		Hooks: []cache.Hook{{Kinds: []cache.EventKind{cache.EventFinding}, Observe: func(e cache.Event) {
			got <- e
		}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case e := <-got:
		var f driver.Finding
		if !errors.As(e.Err, &f) || f.Check != "unlogged" || f.Severity != driver.SeverityWarning || e.Key != "unlogged" || e.Driver != "pg" {
			t.Errorf("CheckOnStart reported %+v; want the unlogged warning", e)
		}
	case <-time.After(time.Minute): // a hang detector
		t.Fatal("CheckOnStart reported nothing within a minute")
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case e := <-got:
		t.Errorf("a second finding: %+v", e)
	default:
	}
}
