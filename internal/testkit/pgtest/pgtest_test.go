package pgtest_test

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cachekit/cache/internal/testkit/pgtest"
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

// TestPause: a paused server answers nothing, neither on a connection opened before nor
// on a new one, and answers again once resumed; a paused server can still be stopped
// and restarted.
func TestPause(t *testing.T) {
	s := pgtest.Start(t)
	if s.Pid() == 0 {
		t.Fatal("Pid() = 0 for a running server")
	}
	ctx := context.Background()
	c, err := pgx.Connect(ctx, s.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	if err := s.Pause(); err != nil {
		if runtime.GOOS != "linux" {
			t.Skip(err)
		}
		t.Fatal(err)
	}
	qctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	err = c.Ping(qctx)
	cancel()
	if err == nil {
		t.Fatal("a paused server answered on an open connection")
	}
	qctx, cancel = context.WithTimeout(ctx, 300*time.Millisecond)
	c2, err := pgx.Connect(qctx, s.URL())
	cancel()
	if err == nil {
		c2.Close(ctx)
		t.Fatal("a paused server accepted a new connection")
	}
	if err := s.Resume(); err != nil {
		t.Fatal(err)
	}
	if v, err := query(t, s.URL(), "SELECT 1::text"); err != nil || v != "1" {
		t.Fatalf("after Resume: %q, %v", v, err)
	}
	if err := s.Pause(); err != nil {
		t.Fatal(err)
	}
	s.Stop() // resumes, then stops
	if s.Pid() != 0 {
		t.Fatal("Pid() != 0 for a stopped server")
	}
	s.Restart(t)
	if v, err := query(t, s.URL(), "SELECT 1::text"); err != nil || v != "1" {
		t.Fatalf("after Stop of a paused server and Restart: %q, %v", v, err)
	}
}
