package pgtest_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cachekit/cache/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func query(t *testing.T, url, sql string, args ...any) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		return "", err
	}
	defer c.Close(context.Background())
	var s string
	err = c.QueryRow(ctx, sql, args...).Scan(&s)
	return s, err
}

// TestShared: the shared server answers, is PostgreSQL, and runs with fsync off.
func TestShared(t *testing.T) {
	url := pgtest.URL(t)
	v, err := query(t, url, "SHOW server_version")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s PostgreSQL %s at %s", pgtest.Kind(), v, url)
	if pgtest.Kind() == pgtest.KindLocal {
		if f, err := query(t, url, "SHOW fsync"); err != nil || f != "off" {
			t.Fatalf("fsync = %q, %v; want off", f, err)
		}
	}
	if again := pgtest.URL(t); again != url {
		t.Fatalf("a second URL = %q; want the same server %q", again, url)
	}
}

// TestStartStopRestart: a server of the test's own keeps its data over a crash and a
// restart on the same port, and refuses connections while stopped.
func TestStartStopRestart(t *testing.T) {
	s := pgtest.Start(t)
	ctx := context.Background()
	c, err := pgx.Connect(ctx, s.URL())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Exec(ctx, "CREATE TABLE IF NOT EXISTS kept2 (v text)"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Exec(ctx, "INSERT INTO kept2 VALUES ('yes')"); err != nil {
		t.Fatal(err)
	}
	c.Close(ctx)
	s.Stop()
	if _, err := query(t, s.URL(), "SELECT 1::text"); err == nil {
		t.Fatal("a stopped server answered")
	}
	s.Restart(t)
	if v, err := query(t, s.URL(), "SELECT v FROM kept2"); err != nil || v != "yes" {
		t.Fatalf("after a crash and restart: %q, %v; want the row kept", v, err)
	}
}
