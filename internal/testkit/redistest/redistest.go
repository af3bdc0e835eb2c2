// Package redistest gives tests a Redis to talk to: a throwaway redis-server on a free
// loopback port, a 3-master Redis Cluster built from three of them, a Sentinel watching a
// master of its own, or, outside CI and only when there is no redis-server, an
// in-process miniredis.
//
// Where the Redis comes from, in order:
//
//  1. REDIS_URL (REDIS_CLUSTER_URL for the Cluster), if set: an external server that the
//     tests share with others, so they must scope their keys.
//  2. redis-server on PATH: started by the package on first use, once per test binary,
//     with no persistence, and stopped by [Main] when the tests end.
//  3. miniredis, only when CI is unset (and no Cluster: Cluster tests skip). In CI a
//     missing redis-server is a test failure, never a skip.
//
// A test package uses it from its TestMain:
//
//	func TestMain(m *testing.M) { redistest.Main(m) }
//
// and then calls [URL], [ClusterURL] or [SentinelAddr] in its tests, or [Start] for a
// server of its own that it may stop and restart (an outage test), [StartCluster] for a
// Cluster of its own, or [StartSentinelGroup] for a master, a replica and three
// Sentinels of its own that it may fail over (a failover test). Every shared server is
// started at most once per test binary, on first use, and killed by Main; a test's own
// servers are killed at its cleanup; on Linux the kernel also kills them all if the test
// binary dies.
package redistest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"go.uber.org/goleak"

	"github.com/cachekit/cache/internal/testkit/testproc"
)

// Kinds of Redis, as [Kind] reports them.
const (
	KindExternal    = "external"     // REDIS_URL / REDIS_CLUSTER_URL
	KindRedisServer = "redis-server" // started by this package
	KindMiniredis   = "miniredis"    // in-process fallback
)

// shared holds the servers the tests of a binary share: "single", "cluster" and
// "sentinel".
var shared testproc.Shared

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

// Binary returns the path of redis-server, or "" if it is not on PATH.
func Binary() string {
	p, err := exec.LookPath("redis-server")
	if err != nil {
		return ""
	}
	return p
}

// URL returns the URL of the package's shared single-node Redis, starting it on first
// use. Tests share it: each must keep to its own keys.
func URL(tb testing.TB) string {
	tb.Helper()
	return shared.Get("single", startShared).Use(tb, "redistest")
}

// Kind reports where the shared single-node Redis comes from (KindExternal,
// KindRedisServer or KindMiniredis); "" before [URL] started it.
func Kind() string { return shared.Kind("single") }

func startShared() *testproc.Server {
	if u := os.Getenv("REDIS_URL"); u != "" {
		return &testproc.Server{URL: u, Kind: KindExternal}
	}
	if Binary() != "" {
		p, err := startProc(0, nil)
		if err != nil {
			return &testproc.Server{Err: err}
		}
		testproc.OnStop(p.stop)
		return &testproc.Server{URL: p.url(), Kind: KindRedisServer, Owned: true}
	}
	if InCI() {
		return &testproc.Server{Err: errors.New("redis-server is not on PATH and REDIS_URL is unset; in CI the Redis tests must run (install redis-server)")}
	}
	m, err := startMini("")
	if err != nil {
		return &testproc.Server{Err: err}
	}
	testproc.OnStop(m.stop)
	return &testproc.Server{URL: m.url(), Kind: KindMiniredis, Owned: true}
}

// ClusterURL returns a URL of the package's shared 3-master Redis Cluster, in go-redis's
// cluster form (redis://host:port?addr=host:port&addr=host:port), starting it on first
// use. Without redis-server and REDIS_CLUSTER_URL, it skips the test outside CI and fails
// it in CI.
func ClusterURL(tb testing.TB) string {
	tb.Helper()
	return shared.Get("cluster", startSharedCluster).Use(tb, "redistest")
}

// ClusterOwned reports whether the shared Cluster was started by this package (so a test
// may FLUSHDB it), rather than given by REDIS_CLUSTER_URL.
func ClusterOwned() bool {
	s := shared.Started("cluster")
	return s != nil && s.Owned
}

func startSharedCluster() *testproc.Server {
	if u := os.Getenv("REDIS_CLUSTER_URL"); u != "" {
		return &testproc.Server{URL: u, Kind: KindExternal}
	}
	if Binary() == "" {
		if InCI() {
			return &testproc.Server{Err: errors.New("redis-server is not on PATH and REDIS_CLUSTER_URL is unset; in CI the Cluster tests must run (install redis-server)")}
		}
		return &testproc.Server{Err: errors.New("no redis-server on PATH and REDIS_CLUSTER_URL is unset: no Redis Cluster to test against"), Skip: true}
	}
	c, err := startCluster(3)
	if err != nil {
		return &testproc.Server{Err: err}
	}
	testproc.OnStop(c.stop)
	return &testproc.Server{URL: c.url(), Kind: KindRedisServer, Owned: true}
}

// Server is a Redis of one test's own, which the test may stop and restart on the same
// port: a redis-server, or miniredis where the shared Redis falls back to it.
type Server struct {
	mu   sync.Mutex
	port int
	p    *proc
	m    *mini
}

// Start starts a Redis for tb alone, stopped at tb's cleanup. It needs redis-server on
// PATH; outside CI it falls back to miniredis. REDIS_URL does not count: a test that
// stops its server cannot use a shared one.
func Start(tb testing.TB) *Server {
	tb.Helper()
	s := &Server{}
	switch {
	case Binary() != "":
		p, err := startProc(0, nil)
		if err != nil {
			tb.Fatalf("redistest: %v", err)
		}
		s.p, s.port = p, p.port
	case InCI():
		tb.Fatal("redistest: redis-server is not on PATH; in CI the Redis tests must run (install redis-server)")
	default:
		m, err := startMini("")
		if err != nil {
			tb.Fatalf("redistest: %v", err)
		}
		s.m, s.port = m, m.port
	}
	tb.Cleanup(s.Stop)
	return s
}

// StartWith is Start for a redis-server started with the extra arguments args (such as
// "--enable-debug-command", "local"). Without redis-server it skips tb, outside CI only.
func StartWith(tb testing.TB, args ...string) *Server {
	tb.Helper()
	if Binary() == "" {
		testproc.Missing(tb, "redistest: redis-server is not on PATH; in CI the Redis tests must run (install redis-server)", "redistest: redis-server is not on PATH")
	}
	p, err := startProc(0, func(string) []string { return args })
	if err != nil {
		tb.Fatalf("redistest: %v", err)
	}
	s := &Server{p: p, port: p.port}
	tb.Cleanup(s.Stop)
	return s
}

// URL returns the server's URL, database 0.
func (s *Server) URL() string { return "redis://" + s.Addr() + "/0" }

// Addr returns the server's host:port.
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// Calls returns how many times the server has run the command cmd, in lower case ("get"),
// from INFO commandstats. A redis-server only: miniredis keeps no such counts.
func (s *Server) Calls(tb testing.TB, cmd string) int64 {
	tb.Helper()
	if s.m != nil {
		tb.Skip("redistest: miniredis has no INFO commandstats; install redis-server")
	}
	var n int64
	err := command(s.Addr(), "INFO commandstats", func(info string) error {
		for line := range strings.Lines(info) {
			if rest, ok := strings.CutPrefix(line, "cmdstat_"+cmd+":calls="); ok {
				n, _ = strconv.ParseInt(rest[:strings.IndexAny(rest, ",\r\n")], 10, 64)
			}
		}
		return nil
	})
	if err != nil {
		tb.Fatalf("redistest: INFO commandstats: %v", err)
	}
	return n
}

// Kind is KindRedisServer or KindMiniredis.
func (s *Server) Kind() string {
	if s.m != nil {
		return KindMiniredis
	}
	return KindRedisServer
}

// Stop kills the server at once, as a crash would (no shutdown, no save). Stopping a
// stopped server does nothing.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.p != nil {
		s.p.stop()
		s.p = nil
	}
	if s.m != nil {
		s.m.stop()
	}
}

// Restart starts the server again on the same port, empty.
func (s *Server) Restart(tb testing.TB) {
	tb.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m != nil {
		s.m.stop()
		m, err := startMini(s.Addr())
		if err != nil {
			tb.Fatalf("redistest: restart miniredis on %s: %v", s.Addr(), err)
		}
		s.m = m
		return
	}
	if s.p != nil {
		s.p.stop()
	}
	p, err := startProc(s.port, nil)
	if err != nil {
		tb.Fatalf("redistest: restart redis-server on port %d: %v", s.port, err)
	}
	s.p = p
}

// proc is one redis-server process.
type proc struct {
	*testproc.Proc
	dir      string
	port     int
	stopOnce sync.Once
}

func (p *proc) url() string { return fmt.Sprintf("redis://127.0.0.1:%d/0", p.port) }
func (p *proc) addr() string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(p.port))
}

// startProc starts redis-server on port (0: a free one, retried if another process takes
// it first) with extra arguments, and waits until it answers PING.
func startProc(port int, extra func(dir string) []string) (*proc, error) {
	return startProcWith(port, nil, extra)
}

// startProcWith is startProc with leading arguments (a config file, which must come
// first) as well as trailing ones.
func startProcWith(port int, leading, extra func(dir string) []string) (*proc, error) {
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		pt := port
		if pt == 0 {
			var err error
			if pt, err = testproc.FreePort(); err != nil {
				return nil, err
			}
		}
		p, err := tryProc(pt, leading, extra)
		if err == nil {
			return p, nil
		}
		lastErr = err
		if port != 0 {
			// A fixed port: the caller needs that one (a restart); a short retry covers a
			// port still in TIME_WAIT or a slow exit of the old process.
			time.Sleep(100 * time.Millisecond)
		}
	}
	return nil, lastErr
}

func tryProc(port int, leading, extra func(dir string) []string) (*proc, error) {
	dir, err := os.MkdirTemp("", "redistest-")
	if err != nil {
		return nil, err
	}
	var args []string
	if leading != nil {
		args = leading(dir)
	}
	args = append(args,
		"--port", strconv.Itoa(port),
		"--bind", "127.0.0.1",
		"--save", "",
		"--appendonly", "no",
		"--dir", dir,
		"--daemonize", "no",
		"--logfile", filepath.Join(dir, "redis.log"),
	)
	if extra != nil {
		args = append(args, extra(dir)...)
	}
	cmd := exec.Command(Binary(), args...)
	cmd.SysProcAttr = sysProcAttr()
	tp, err := testproc.Start(cmd)
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("start redis-server: %w", err)
	}
	p := &proc{Proc: tp, dir: dir, port: port}
	if err := p.WaitReady(func() error { return ping(p.addr()) }, 10*time.Millisecond, 10*time.Second, "does not answer PING"); err != nil {
		err = fmt.Errorf("redis-server on port %d %v: %s", port, err, p.logTail())
		p.stop()
		return nil, err
	}
	return p, nil
}

// stop kills the process, waits for it, and removes its directory.
func (p *proc) stop() {
	p.stopOnce.Do(func() {
		_ = p.Cmd.Process.Kill()
		select {
		case <-p.Done:
		case <-time.After(10 * time.Second):
		}
		os.RemoveAll(p.dir)
	})
}

func (p *proc) logTail() string {
	b, _ := os.ReadFile(filepath.Join(p.dir, "redis.log"))
	b = bytes.TrimSpace(b)
	if len(b) > 600 {
		b = b[len(b)-600:]
	}
	if len(b) == 0 {
		return "(empty log)"
	}
	return string(b)
}

// ping sends PING in the inline protocol and waits for +PONG.
func ping(addr string) error {
	return command(addr, "PING", func(line string) error {
		if line != "+PONG" {
			return fmt.Errorf("PING: %q", line)
		}
		return nil
	})
}

// command sends one inline command to addr and hands check the first reply line. For
// bulk replies, check gets the bulk text instead.
func command(addr, cmd string, check func(string) error) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte(cmd + "\r\n")); err != nil {
		return err
	}
	r := bufio.NewReader(c)
	line, err := r.ReadString('\n')
	if err != nil {
		return err
	}
	line = strings.TrimRight(line, "\r\n")
	if strings.HasPrefix(line, "$") {
		n, err := strconv.Atoi(line[1:])
		if err != nil || n < 0 {
			return fmt.Errorf("%s: reply %q", cmd, line)
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return err
		}
		return check(string(buf[:n]))
	}
	return check(line)
}

// mini is an in-process miniredis whose clock follows the wall clock: miniredis's TTLs do
// not run down by themselves, so a goroutine moves them on every few milliseconds.
type mini struct {
	m     *miniredis.Miniredis
	port  int
	stopc chan struct{}
	done  chan struct{}
	once  sync.Once
}

func startMini(addr string) (*mini, error) {
	m := miniredis.NewMiniRedis()
	var err error
	if addr == "" {
		err = m.Start()
	} else {
		err = m.StartAddr(addr)
	}
	if err != nil {
		return nil, fmt.Errorf("start miniredis: %w", err)
	}
	port, _ := strconv.Atoi(m.Port())
	x := &mini{m: m, port: port, stopc: make(chan struct{}), done: make(chan struct{})}
	go x.tick()
	return x, nil
}

func (x *mini) url() string { return fmt.Sprintf("redis://127.0.0.1:%d/0", x.port) }

func (x *mini) tick() {
	defer close(x.done)
	t := time.NewTicker(2 * time.Millisecond)
	defer t.Stop()
	last := time.Now()
	for {
		select {
		case <-x.stopc:
			return
		case now := <-t.C:
			x.m.FastForward(now.Sub(last))
			last = now
		}
	}
}

func (x *mini) stop() {
	x.once.Do(func() {
		close(x.stopc)
		<-x.done
		x.m.Close()
	})
}

// IgnoreGoroutines are the goleak options that leave out the goroutines of the servers
// this package runs (a redis-server's reaper, in package testproc; miniredis's server and
// clock), for a leak check in a test that restarts a server.
func IgnoreGoroutines() []goleak.Option {
	return []goleak.Option{
		goleak.IgnoreAnyFunction("github.com/cachekit/cache/internal/testkit/testproc.(*Proc).wait"),
		goleak.IgnoreAnyFunction("github.com/cachekit/cache/internal/testkit/redistest.(*mini).tick"),
		goleak.IgnoreAnyFunction("github.com/alicebob/miniredis/v2/server.(*Server).serve"),
		goleak.IgnoreAnyFunction("github.com/alicebob/miniredis/v2/server.(*Server).servePeer"),
	}
}
