// Package pgtest gives tests a PostgreSQL to talk to: a throwaway server, made with
// initdb in a temporary directory and started on a free loopback port, with fsync off
// (a commit is still written to the operating system before it returns, so a crash of
// the server, which [Server.Stop] is, loses nothing; only a crash of the machine would).
//
// Where the PostgreSQL comes from, in order:
//
//  1. POSTGRES_URL, if set: an external server that the tests share with others, so
//     they must scope their keys (or their tables).
//  2. The server binaries (initdb and postgres): PG_BINDIR if set, else the directory
//     that pg_config --bindir names, else the newest /usr/lib/postgresql/<version>/bin
//     (Debian's and Ubuntu's packages), else PATH. The package runs initdb and postgres
//     on first use, once per test binary, and [Main] (or [StopAll]) stops the server
//     and removes its directory when the tests end.
//
// Without either, a test that asks for a server skips, saying why; in CI (CI set to
// anything but "", "false" or "0") it fails instead: there the PostgreSQL tests must run.
//
// PostgreSQL refuses to run as root. When the tests run as root (as CI containers do),
// the package runs initdb and postgres as the user "postgres" (which Debian's package
// creates), with the directory handed over to that user.
//
// A test package uses it from its TestMain:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
//
// and then calls [URL] in its tests, or [Start] for a server of its own that it may
// crash and restart. On Linux the kernel also stops a server whose test binary dies.
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cachekit/cache/internal/testkit/testproc"
)

// shared holds the server the tests of a binary share: "local".
var shared testproc.Shared

// Kinds of PostgreSQL, as [Kind] reports them.
const (
	KindExternal = "external" // POSTGRES_URL
	KindLocal    = "postgres" // started by this package
)

// Main runs the package's tests, then stops every server the package started, and exits
// with the tests' exit code.
func Main(m *testing.M) { testproc.Main(m) }

// StopAll stops every server started so far, by this package or by the other test
// packages that start servers (they share one registry). [Main] calls it; a TestMain that
// does more may call it itself.
func StopAll() { testproc.StopAll() }

// InCI reports whether the CI environment variable is set (to anything but "", "false"
// or "0"): then a missing server fails the test instead of skipping it.
func InCI() bool { return testproc.InCI() }

// BinDir returns the directory that holds initdb and postgres, or "" if there is none.
func BinDir() string {
	ok := func(dir string) bool {
		for _, b := range []string{"initdb", "postgres"} {
			if fi, err := os.Stat(filepath.Join(dir, b)); err != nil || fi.IsDir() {
				return false
			}
		}
		return true
	}
	if d := os.Getenv("PG_BINDIR"); d != "" {
		if ok(d) {
			return d
		}
		return ""
	}
	if pc, err := exec.LookPath("pg_config"); err == nil {
		if out, err := exec.Command(pc, "--bindir").Output(); err == nil {
			if d := strings.TrimSpace(string(out)); ok(d) {
				return d
			}
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(dirs, func(a, b string) int { return versionOf(b) - versionOf(a) }) // newest first
	for _, d := range dirs {
		if ok(d) {
			return d
		}
	}
	if p, err := exec.LookPath("postgres"); err == nil && ok(filepath.Dir(p)) {
		return filepath.Dir(p)
	}
	return ""
}

// versionOf is the major version in /usr/lib/postgresql/<version>/bin, 0 if none.
func versionOf(dir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(dir)))
	return n
}

// URL returns the URL of the package's shared PostgreSQL, starting it on first use. Tests
// share it: each must keep to its own keys or tables. Without PostgreSQL it skips the
// test (outside CI) or fails it (in CI).
func URL(tb testing.TB) string {
	tb.Helper()
	return shared.Get("local", startShared).Use(tb, "pgtest")
}

// Kind reports where the shared PostgreSQL comes from (KindExternal or KindLocal); ""
// before [URL] started it, or when it could not.
func Kind() string { return shared.Kind("local") }

func startShared() *testproc.Server {
	if u := os.Getenv("POSTGRES_URL"); u != "" {
		return &testproc.Server{URL: u, Kind: KindExternal}
	}
	if err := missing(); err != nil {
		return &testproc.Server{Err: err, Skip: !InCI()}
	}
	s, err := newServer()
	if err != nil {
		return &testproc.Server{Err: err}
	}
	testproc.OnStop(s.remove)
	return &testproc.Server{URL: s.URL(), Kind: KindLocal, Owned: true}
}

// missing says why no server can be started here, or nil.
func missing() error {
	if BinDir() == "" {
		if InCI() {
			return errors.New("PostgreSQL's initdb and postgres were not found (PG_BINDIR, pg_config, /usr/lib/postgresql/*/bin, PATH) and POSTGRES_URL is unset; in CI the PostgreSQL tests must run (apt-get install postgresql)")
		}
		return errors.New("PostgreSQL's initdb and postgres were not found (PG_BINDIR, pg_config, /usr/lib/postgresql/*/bin, PATH) and POSTGRES_URL is unset (apt-get install postgresql to run these tests)")
	}
	return nil
}

// Server is a PostgreSQL of one test's own, which the test may crash and restart on the
// same port, with the same data.
type Server struct {
	mu      sync.Mutex
	dir     string // the temporary directory: data/ and server.log
	port    int
	who     runAs // the postgres user, when running as root
	p       *proc // nil while stopped
	paused  []int // the processes Pause stopped, until Resume
	removed bool
}

// Start starts a PostgreSQL for tb alone, stopped and removed at tb's cleanup. It needs
// the server binaries: POSTGRES_URL does not count, since a test that stops its server
// cannot use a shared one. Without them it skips (outside CI) or fails (in CI).
func Start(tb testing.TB) *Server {
	tb.Helper()
	if err := missing(); err != nil {
		testproc.Missing(tb, "pgtest: "+err.Error(), "pgtest: "+err.Error())
	}
	s, err := newServer()
	if err != nil {
		tb.Fatalf("pgtest: %v", err)
	}
	tb.Cleanup(s.remove)
	return s
}

// URL returns the server's URL: user postgres, database postgres, no password, no TLS.
func (s *Server) URL() string {
	return fmt.Sprintf("postgres://postgres@%s/postgres?sslmode=disable", s.Addr())
}

// Addr returns the server's host:port.
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// Pid returns the postmaster's process id, or 0 while the server is stopped.
func (s *Server) Pid() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.p == nil {
		return 0
	}
	return s.p.Cmd.Process.Pid
}

// Pause stops the whole server with SIGSTOP, as a stalled machine would: the postmaster
// first, once it has stopped (so that it forks no backend after the list is read) every
// process it started (backends, checkpointer, WAL writer, ...). Connections stay open;
// new ones wait in the listen queue. [Server.Resume] resumes it; Stop, Restart and the
// test's cleanup resume a paused server first. Pausing a paused server does nothing. It
// needs Linux (/proc); elsewhere it returns an error.
func (s *Server) Pause() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.p == nil {
		return errors.New("pgtest: pause: the server is stopped")
	}
	if s.paused != nil {
		return nil
	}
	pids, err := stopTree(s.p.Cmd.Process.Pid)
	if pids != nil {
		s.paused = pids
	}
	if err != nil {
		return fmt.Errorf("pgtest: pause: %w", err)
	}
	return nil
}

// Resume resumes a server that [Server.Pause] stopped (SIGCONT to every process it
// stopped). Resuming a server that is not paused does nothing.
func (s *Server) Resume() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.resume()
}

func (s *Server) resume() error {
	pids := s.paused
	s.paused = nil
	if err := contAll(pids); err != nil {
		return fmt.Errorf("pgtest: resume: %w", err)
	}
	return nil
}

// Stop stops the server at once, as a crash would: an immediate shutdown (SIGQUIT), after
// which the next start runs crash recovery (and empties UNLOGGED tables). A paused server
// is resumed first. Stopping a stopped server does nothing.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	_ = s.resume()
	if s.p != nil {
		s.p.stop()
		s.p = nil
	}
}

// Restart starts the server again on the same port with the same data directory (a
// stopped one, or a running one, which is stopped first).
func (s *Server) Restart(tb testing.TB) {
	tb.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	_ = s.resume()
	if s.p != nil {
		s.p.stop()
		s.p = nil
	}
	var err error
	for range 20 { // the port may linger for a moment after the old server's exit
		if s.p, err = s.startProc(); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	tb.Fatalf("pgtest: restart on port %d: %v", s.port, err)
}

// remove stops the server and removes its directory.
func (s *Server) remove() {
	s.Stop()
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.removed {
		s.removed = true
		os.RemoveAll(s.dir)
	}
}

// newServer runs initdb in a new temporary directory and starts postgres on a free port.
func newServer() (*Server, error) {
	bin := BinDir()
	dir, err := os.MkdirTemp("", "pgtest-")
	if err != nil {
		return nil, err
	}
	s := &Server{dir: dir}
	fail := func(err error) (*Server, error) {
		os.RemoveAll(dir)
		return nil, err
	}
	if s.who, err = asPostgres(dir); err != nil {
		return fail(err)
	}
	cmd := exec.Command(filepath.Join(bin, "initdb"),
		"-D", filepath.Join(dir, "data"), "-U", "postgres", "--auth=trust",
		"-E", "UTF8", "--no-locale", "--no-sync")
	cmd.Dir = dir
	cmd.Env = childEnv()
	setProc(cmd, s.who)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fail(fmt.Errorf("initdb: %v: %s", err, testproc.Tail(out)))
	}
	for range 5 {
		if s.port, err = testproc.FreePort(); err != nil {
			return fail(err)
		}
		if s.p, err = s.startProc(); err == nil {
			return s, nil
		}
	}
	return fail(err)
}

// childEnv is the environment of initdb and postgres: the test's, without the libpq
// variables that would point them elsewhere, and with a C locale.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "PG") || strings.HasPrefix(kv, "LC_") || strings.HasPrefix(kv, "LANG=") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "LANG=C")
}

// proc is one running postmaster.
type proc struct {
	*testproc.Proc
	log      *os.File
	stopOnce sync.Once
}

// startProc starts postgres on s.port and waits until it accepts connections.
func (s *Server) startProc() (*proc, error) {
	logPath := filepath.Join(s.dir, "server.log")
	log, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(filepath.Join(BinDir(), "postgres"),
		"-D", filepath.Join(s.dir, "data"),
		"-p", strconv.Itoa(s.port),
		"-c", "listen_addresses=127.0.0.1",
		"-c", "unix_socket_directories=",
		"-c", "fsync=off",
		"-c", "full_page_writes=off",
		"-c", "max_connections=400",
		"-c", "shared_buffers=64MB",
		"-c", "logging_collector=off",
	)
	cmd.Dir = s.dir
	cmd.Env = childEnv()
	cmd.Stdout, cmd.Stderr = log, log
	setProc(cmd, s.who)
	tp, err := testproc.Start(cmd)
	if err != nil {
		log.Close()
		return nil, fmt.Errorf("start postgres: %w", err)
	}
	p := &proc{Proc: tp, log: log}
	url := s.URL()
	if err := p.WaitReady(func() error { return ping(url) }, 20*time.Millisecond, 30*time.Second, "does not accept connections"); err != nil {
		p.stop()
		return nil, fmt.Errorf("postgres on port %d %v: %s", s.port, err, s.logTail())
	}
	return p, nil
}

// stop shuts the server down at once (SIGQUIT: immediate shutdown) and waits for it;
// SIGKILL if it has not exited after 10 s.
func (p *proc) stop() {
	p.stopOnce.Do(func() {
		_ = quit(p.Cmd.Process)
		select {
		case <-p.Done:
		case <-time.After(10 * time.Second):
			_ = p.Cmd.Process.Kill()
			<-p.Done
		}
		p.log.Close()
	})
}

func (s *Server) logTail() string { return testproc.Tail(readFile(filepath.Join(s.dir, "server.log"))) }

func readFile(path string) []byte {
	b, _ := os.ReadFile(path)
	return b
}

// ping connects to url and runs SELECT 1.
func ping(url string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer c.Close(context.Background())
	return c.Ping(ctx)
}
