package linearize

import (
	"flag"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/cachekit/cache"
	"github.com/cachekit/cache/drivers/lrucache"
	"github.com/cachekit/cache/drivers/memorycache"
	"github.com/cachekit/cache/internal/testkit/faultrun"
	"github.com/cachekit/cache/internal/testkit/pgtest"
	"github.com/cachekit/cache/internal/testkit/redistest"
)

// SoakEnv, set to a duration (CACHEKIT_LINEARIZE_SOAK=10m), makes each driver's run last
// that long instead of the short default of CI, and runs the Sentinel failover target,
// which is informational.
const SoakEnv = "CACHEKIT_LINEARIZE_SOAK"

var (
	// duration is how long each driver's run lasts: a few seconds in CI.
	duration = flag.Duration("linearize.duration", 8*time.Second, "how long each driver's run lasts (the "+SoakEnv+" environment variable overrides it)")
	// visualize, if set, is a directory where porcupine writes the visualization of every
	// key whose history is not linearizable, as HTML, for a closer look.
	visualize = flag.String("linearize.visualize", "", "a directory to write porcupine's visualization of non-linearizable keys to")
)

const (
	procClients = 4               // client processes
	goClients   = 6               // client goroutines of the in-process drivers
	keys        = 3               // keys in use at a time
	epoch       = 5 * time.Second // how long keys are used before the clients move on
	// checkTimeout bounds porcupine's check of one key: a hang detector. A key's
	// history is a few seconds of operations; its check takes milliseconds.
	checkTimeout = 5 * time.Minute
)

func TestMain(m *testing.M) { faultrun.Main(m, ChildMain) } // a client process runs its job and exits in ChildMain

// runFor is how long a driver's run lasts: the soak's duration, or -linearize.duration.
func runFor(t *testing.T) time.Duration {
	t.Helper()
	if s := os.Getenv(SoakEnv); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			t.Fatalf("%s=%q: %v", SoakEnv, s, err)
		}
		return d
	}
	return *duration
}

func baseJob(target, addr string) Job {
	return Job{Target: target, Addr: addr, Keys: keys, Epoch: epoch, Prefix: "lin", Think: 2 * time.Millisecond}
}

// check checks the history and logs the run's figures.
func check(t *testing.T, name string, recs []Record, faults map[string]int) Result {
	t.Helper()
	start := time.Now()
	r := Check(recs, CheckOptions{Timeout: checkTimeout, VisualizeDir: *visualize})
	t.Logf("%s: %v; %s; checked in %v", name, r, faultrun.FaultString(faults), time.Since(start).Round(time.Millisecond))
	for k, n := range r.Errors {
		t.Logf("  error ×%d: %s", n, k)
	}
	return r
}

// assertLinearizable fails the test on a history that is not linearizable (or whose
// check did not end), and on a run too thin to mean anything.
func assertLinearizable(t *testing.T, r Result) {
	t.Helper()
	for _, k := range r.Illegal {
		t.Errorf("key %s: not linearizable:\n%s", k, r.Reports[k])
	}
	if len(r.TimedOut) > 0 {
		t.Errorf("%d keys not decided within %v: %v", len(r.TimedOut), checkTimeout, r.TimedOut)
	}
	if r.Ops < 200 {
		t.Errorf("only %d operations: the run proves little", r.Ops)
	}
}

// newCache returns a cache on one in-process driver.
func newCache(t *testing.T, name string, d cache.Driver) *cache.Cache {
	t.Helper()
	c, err := cache.New(cache.Config{Drivers: map[string]cache.Driver{name: d}, Prefix: "lin"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// runInProcess runs goroutine clients on c under the in-process faults.
func runInProcess(t *testing.T, name string, c *cache.Cache, job Job, dur time.Duration, withFaults bool) Result {
	t.Helper()
	p := NewInProcess(t, c, job)
	p.Start(goClients)
	var faults []faultrun.Fault
	if withFaults {
		faults = p.Faults()
	}
	p.Run(dur, faults)
	recs := p.Finish()
	return check(t, name, recs, p.FaultCounts())
}

// TestLinearizableMemory: the memory driver, clients as goroutines; faults: GOMAXPROCS 1
// for a while, garbage collections back to back.
func TestLinearizableMemory(t *testing.T) {
	d, err := memorycache.New(memorycache.Options{})
	if err != nil {
		t.Fatal(err)
	}
	r := runInProcess(t, "memory", newCache(t, "memory", d), baseJob("memory", ""), runFor(t), true)
	assertLinearizable(t, r)
}

// TestLinearizableLRU: the lru driver, as the memory driver.
func TestLinearizableLRU(t *testing.T) {
	d, err := lrucache.New(lrucache.Options{Capacity: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	r := runInProcess(t, "lru", newCache(t, "lru", d), baseJob("lru", ""), runFor(t), true)
	assertLinearizable(t, r)
}

// runProcs runs client processes on job under the faults, then checks the history.
func runProcs(t *testing.T, name string, job Job, targets []string, schedule func(h *Harness)) Result {
	t.Helper()
	h := NewHarness(t, job, targets)
	h.Start(procClients)
	schedule(h)
	recs := h.Finish()
	return check(t, name, recs, h.Faults())
}

// TestLinearizableFile: the file driver, client processes on one directory; faults:
// pause and kill of clients (a client may be paused or killed while it holds one of
// the driver's file locks, or between writing a file and renaming it).
func TestLinearizableFile(t *testing.T) {
	dur := runFor(t)
	r := runProcs(t, "file", baseJob(faultrun.TargetFile, t.TempDir()), nil, func(h *Harness) {
		h.Run(dur, []faultrun.Fault{h.PauseClient(), h.KillClient()})
	})
	assertLinearizable(t, r)
}

// TestLinearizableRedis: a single redis-server of the test's own with an append-only
// file written and fsynced before every reply, so that a crash loses no acknowledged
// write. Faults: every client's link (freeze, delay, reset, drop), pause and kill of
// clients, a pause of the server (SIGSTOP), and a crash of the server (SIGKILL) and its
// restart on the same port from its append-only file. The clients' go-redis clients
// are on go-redis's default options, retries included (MaxRetries 3): the driver sends
// the writes whose second run would differ from the first as commands that go-redis
// does not send again, so a write whose reply was lost runs once.
func TestLinearizableRedis(t *testing.T) {
	requireRedis(t)
	srv := startAOFRedis(t)
	dur := runFor(t)
	job := baseJob(faultrun.TargetRedis, srv.Addr())
	restart := faultrun.Fault{Kind: "restart-redis", Weight: 1, Do: func(d time.Duration) {
		srv.Kill()
		time.Sleep(d)
		srv.Start(t)
	}}
	r := runProcs(t, "redis", job, []string{srv.Addr()}, func(h *Harness) {
		faults := append(h.ProxyFaults(), h.PauseClient(), h.KillClient(),
			faultrun.PauseListener(t, "pause-redis", 2, func() string { return srv.Addr() }), restart)
		h.Run(dur/2, faults)
		h.Apply(restart) // every run has a restart, in the middle
		h.Run(dur/2, faults)
	})
	assertLinearizable(t, r)
}

// TestLinearizableCluster: a 3-master Redis Cluster of the test's own; every client
// dials every node through a proxy of its own. Faults: the links, pause and kill of
// clients, a pause of a node (shorter than the cluster's node timeout: no failover). The
// clients are on go-redis's default options (retries and redirections), as in
// TestLinearizableRedis.
func TestLinearizableCluster(t *testing.T) {
	requireRedis(t)
	cl := redistest.StartCluster(t)
	nodes := faultrun.ClusterNodes(t, cl.URL())
	dur := runFor(t)
	job := baseJob(faultrun.TargetCluster, strings.Join(nodes, ","))
	pause := faultrun.PauseListener(t, "pause-node", 2, func() string { return nodes[rand.N(len(nodes))] })
	r := runProcs(t, "cluster", job, nodes, func(h *Harness) {
		faults := append(h.ProxyFaults(), h.PauseClient(), h.KillClient(), pause)
		h.Run(dur/2, faults)
		h.Apply(pause) // every run has a pause of a node, in the middle
		h.Run(dur/2, faults)
	})
	assertLinearizable(t, r)
}

// pgOpTimeout bounds each operation on PostgreSQL, as go-redis's read timeout (3 s)
// bounds the Redis clients' commands: pgx has no read timeout of its own and waits for
// a reply as long as its ctx lets it.
const pgOpTimeout = 3 * time.Second

// TestLinearizablePostgres: a PostgreSQL of the test's own (internal/testkit/pgtest), the
// pgcache driver on its default, logged table; every client's pgx pool dials its proxy.
// Faults: the links, pause and kill of clients, a pause of the whole server (SIGSTOP of
// the postmaster and every backend), and a crash of the server (immediate shutdown) and
// its restart on the same port with the same data.
func TestLinearizablePostgres(t *testing.T) {
	srv := pgtest.Start(t)
	job := baseJob(faultrun.TargetPostgres, srv.URL())
	job.OpTimeout = pgOpTimeout
	dur := runFor(t)
	pause := faultrun.Fault{Kind: "pause-postgres", Weight: 2, Do: func(d time.Duration) {
		if err := srv.Pause(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(d)
		if err := srv.Resume(); err != nil {
			t.Fatal(err)
		}
	}}
	restart := faultrun.Fault{Kind: "restart-postgres", Weight: 1, Do: func(d time.Duration) {
		srv.Stop()
		time.Sleep(d)
		srv.Restart(t)
	}}
	r := runProcs(t, "postgres", job, []string{srv.Addr()}, func(h *Harness) {
		faults := append(h.ProxyFaults(), h.PauseClient(), h.KillClient(), pause, restart)
		h.Run(dur/2, faults)
		h.Apply(restart) // every run has a restart, in the middle
		h.Run(dur/2, faults)
	})
	assertLinearizable(t, r)
}

// TestNegativeControl proves that the checker sees a compare-and-swap that is not
// atomic: the clients' CAS is a Get, then a Set if the value matched (Job.Racy), and
// the history must be reported not linearizable. On the memory driver (goroutines,
// with the in-process faults) and on the file driver (processes, with pauses of
// clients).
func TestNegativeControl(t *testing.T) {
	dur := min(runFor(t), 4*time.Second)
	t.Run("memory", func(t *testing.T) {
		d, err := memorycache.New(memorycache.Options{})
		if err != nil {
			t.Fatal(err)
		}
		job := baseJob("memory", "")
		job.Racy = true
		r := runInProcess(t, "control memory", newCache(t, "memory", d), job, dur, true)
		assertCaught(t, r)
	})
	t.Run("file", func(t *testing.T) {
		job := baseJob(faultrun.TargetFile, t.TempDir())
		job.Racy = true
		r := runProcs(t, "control file", job, nil, func(h *Harness) {
			h.Run(dur, []faultrun.Fault{h.PauseClient()})
		})
		assertCaught(t, r)
	})
}

// assertCaught fails the test unless the checker reported the history not linearizable.
func assertCaught(t *testing.T, r Result) {
	t.Helper()
	if len(r.Illegal) == 0 {
		t.Errorf("the checker found a history of a non-atomic compare-and-swap linearizable: %v", r)
		return
	}
	k := r.Illegal[0]
	t.Logf("as it must, the checker reports key %s (and %d others) not linearizable:\n%s", k, len(r.Illegal)-1, r.Reports[k])
}

// requireRedis skips the test without redis-server outside CI (and fails it in CI).
func requireRedis(t *testing.T) {
	t.Helper()
	faultrun.RequireRedis(t, "these tests")
}
