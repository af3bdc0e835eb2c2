package nemesis

import (
	"encoding/json"
	"flag"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cachekit/cache/internal/testkit/faultrun"
	"github.com/cachekit/cache/internal/testkit/redistest"
)

// duration is how long each target's run lasts. The default keeps the whole package
// (every target) near 110–140 s on a 2-core machine; a soak run sets it longer:
//
//	go test ./internal/testkit/nemesis -run Nemesis -nemesis.duration=30m -timeout 4h
var duration = flag.Duration("nemesis.duration", 12*time.Second, "how long each target's run lasts")

// dump, if set, is a directory where each run writes its sections and faults as JSON,
// for a closer look at a run.
var dump = flag.String("nemesis.dump", "", "a directory to write each run's sections and faults to, as JSON")

const (
	holders = 4
	keys    = 3
	minTTL  = 200 * time.Millisecond
	maxTTL  = 600 * time.Millisecond
	maxWait = 200 * time.Millisecond
)

func TestMain(m *testing.M) { faultrun.Main(m, ChildMain) } // a holder process runs its job and exits in ChildMain

func baseJob(target, addr string) Job {
	return Job{Mode: ModeLock, Target: target, Addr: addr, Keys: keys, MinTTL: minTTL, MaxTTL: maxTTL, MaxWait: maxWait, Prefix: "nem"}
}

// result is one run's figures.
type result struct {
	name    string
	report  Report
	sum     Summary
	faults  map[string]int
	windows []Window
}

func (r result) log(t *testing.T) {
	t.Helper()
	t.Logf("%s: %v; %s; %d Lock calls, %d acquired (%d without an action), %d not acquired, %d lost (ErrLockLost), %d lock errors",
		r.name, r.report, faultrun.FaultString(r.faults), r.sum.Attempts, r.sum.Acquired, r.sum.NoAction, r.sum.NotAcquired, r.sum.Lost, r.sum.Errors)
	for k, n := range r.sum.ErrorKinds {
		t.Logf("  lock error ×%d: %s", n, k)
	}
}

// run runs holders on job for dur under faults, then checks the history.
func run(t *testing.T, name string, job Job, targets []string, dur time.Duration, faults func(h *Harness) []Fault) result {
	t.Helper()
	return runWith(t, name, job, targets, func(h *Harness) { h.Run(dur, faults(h)) })
}

// runWith runs holders on job under the faults that schedule applies, then checks the
// history.
func runWith(t *testing.T, name string, job Job, targets []string, schedule func(h *Harness)) result {
	t.Helper()
	h := NewHarness(t, job, targets)
	h.Start(holders)
	schedule(h)
	secs, sum := h.Finish()
	if *dump != "" {
		b, err := json.MarshalIndent(map[string]any{"sections": secs, "faults": h.Windows()}, "", " ")
		if err != nil {
			t.Fatal(err)
		}
		name := strings.NewReplacer(" ", "_", ",", "", "/", "_").Replace(t.Name()) + ".json"
		if err := os.WriteFile(filepath.Join(*dump, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return result{name: name, report: Check(secs), sum: sum, faults: h.Faults(), windows: h.Windows()}
}

// assertSafe fails the test on any overlap or token out of order, and on a run too
// thin to mean anything.
func assertSafe(t *testing.T, r result) {
	t.Helper()
	if len(r.report.Overlaps) > 0 || len(r.report.OutOfOrder) > 0 {
		t.Errorf("%s: %d overlaps, %d tokens out of order; want none", r.name, len(r.report.Overlaps), len(r.report.OutOfOrder))
	}
	if r.report.Sections < 20 {
		t.Errorf("%s: only %d sections: the run proves little", r.name, r.report.Sections)
	}
}

// TestNemesisFile: the file driver (one directory, holders on one host); faults: pause
// and kill of holders.
func TestNemesisFile(t *testing.T) {
	job := baseJob(faultrun.TargetFile, t.TempDir())
	r := run(t, "file", job, nil, *duration, func(h *Harness) []Fault {
		return []Fault{h.PauseHolder(), h.KillHolder()}
	})
	r.log(t)
	assertSafe(t, r)
}

// TestNemesisRedis: a single redis-server of the test's own; faults: every holder's
// link (freeze, delay, reset, drop), pause and kill of holders, pause of the server
// (SIGSTOP), and a restart of the server without persistence that stays down for longer
// than the longest TTL.
func TestNemesisRedis(t *testing.T) {
	srv := startRedis(t)
	job := baseJob(faultrun.TargetRedis, srv.Addr())
	r := run(t, "redis", job, []string{srv.Addr()}, *duration, func(h *Harness) []Fault {
		return append(h.ProxyFaults(), h.PauseHolder(), h.KillHolder(),
			faultrun.PauseListener(t, "pause-redis", 2, func() string { return srv.Addr() }),
			Fault{Kind: "restart-redis", Weight: 1, Do: func(d time.Duration) {
				srv.Stop()
				// Down for longer than any lease: a lock held when the server died
				// must have run out at its holder before the empty server is back.
				time.Sleep(max(d, maxTTL+100*time.Millisecond))
				srv.Restart(t)
			}})
	})
	r.log(t)
	assertSafe(t, r)
}

// TestNemesisCluster: a 3-master Redis Cluster of the test's own; every holder dials
// every node through a proxy of its own. Faults: the links, pause and kill of holders,
// pause of a node (shorter than the cluster's node timeout: no failover).
func TestNemesisCluster(t *testing.T) {
	requireRedis(t)
	cl := redistest.StartCluster(t)
	nodes := faultrun.ClusterNodes(t, cl.URL())
	job := baseJob(faultrun.TargetCluster, strings.Join(nodes, ","))
	r := run(t, "cluster", job, nodes, *duration, func(h *Harness) []Fault {
		return append(h.ProxyFaults(), h.PauseHolder(), h.KillHolder(),
			faultrun.PauseListener(t, "pause-node", 2, func() string { return nodes[rand.N(len(nodes))] }))
	})
	r.log(t)
	assertSafe(t, r)
}

// requireRedis skips the test without redis-server outside CI (and fails it in CI):
// miniredis cannot be paused or run a cluster.
func requireRedis(t *testing.T) {
	t.Helper()
	faultrun.RequireRedis(t, "the nemesis")
}

func startRedis(t *testing.T) *redistest.Server {
	t.Helper()
	requireRedis(t)
	return redistest.Start(t)
}
