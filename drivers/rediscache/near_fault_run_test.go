//go:build linux

package rediscache_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cachekit/cache/drivers/rediscache"
	"github.com/cachekit/cache/internal/testkit/faultproxy"
	"github.com/cachekit/cache/internal/testkit/nearcheck"
	"github.com/cachekit/cache/internal/testkit/redistest"
	"github.com/cachekit/cache/internal/testkit/testproc"
)

// The near cache's fault suite: the faults and the runs. The pieces are in
// near_fault_test.go.
//
// TestNearFaults runs every fault once (about a minute). NEAR_SOAK=<duration> makes it a
// soak: the fault cycles repeat for that long, beside NEAR_SOAK_HOGS busy processes
// (default: one per CPU). NEAR_FAULTS=<kind>,<kind>… limits the Sentinel faults to
// those kinds (failover, kill, pause, tracking-kill, tracking-freeze, data-freeze,
// flushall, swapdb).
//
//	NEAR_SOAK=30m NEAR_SOAK_HOGS=4 go test -count=1 -timeout 45m -run TestNearFaults -v ./drivers/rediscache/

// nearMissing names, by fault, a guarantee the near cache does not give yet: the
// violations after such a fault are reported, and the run skips rather than fails.
var nearMissing = map[string]string{}

// nearMissingKinds is nearMissing for a kind of violation, whatever the fault.
var nearMissingKinds = map[nearcheck.Kind]string{}

// judgeNear fails t for every violation in h's history, except those of a missing
// guarantee, after which it skips t, naming them.
func judgeNear(t *testing.T, h *nearHistory) {
	t.Helper()
	r := h.total
	t.Logf("the history: %v", r)
	t.Logf("by fault:\n%s", figures(r, h.applied))
	missing := map[string]bool{}
	for _, f := range slices.Sorted(mapsKeys(r.ByFault)) {
		for k, n := range r.ByFault[f] {
			if k == nearcheck.Covered || k == nearcheck.LateFailedWrite || n == 0 {
				continue
			}
			why, ok := nearMissing[f]
			if !ok {
				why, ok = nearMissingKinds[k]
			}
			if ok {
				missing[why] = true
				t.Logf("after %s: %d %s reads (worst staleness %v): a guarantee not given yet: %s", f, n, k, r.WorstByFault[f], why)
				continue
			}
			t.Errorf("after %s: %d %s reads (worst staleness %v)", f, n, k, r.WorstByFault[f])
		}
	}
	if len(missing) > 0 && !t.Failed() {
		t.Skipf("violations of guarantees the near cache does not give yet: %s", strings.Join(slices.Sorted(mapsKeys(missing)), "; "))
	}
}

// figures is a Markdown table of r by fault, for docs/reliability.md.
func figures(r nearcheck.Report, applied map[string]int) string {
	var b strings.Builder
	b.WriteString("| after | applied | reads | stale | non-monotonic | missed own writes | covered by MaxAge | late failed writes | worst staleness |\n|---|---|---|---|---|---|---|---|---|\n")
	for _, f := range slices.Sorted(mapsKeys(r.ReadsByFault)) {
		c := r.ByFault[f]
		fmt.Fprintf(&b, "| `%s` | %d | %d | %d | %d | %d | %d | %d | %v |\n", f, applied[f], r.ReadsByFault[f],
			c[nearcheck.Stale], c[nearcheck.NonMonotonic], c[nearcheck.MissedOwnWrite], c[nearcheck.Covered], c[nearcheck.LateFailedWrite],
			r.WorstByFault[f].Round(10*time.Microsecond))
	}
	return b.String()
}

func mapsKeys[K comparable, V any](m map[K]V) func(func(K) bool) {
	return func(yield func(K) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// nearSoak is NEAR_SOAK's duration, 0 when unset.
func nearSoak(t *testing.T) time.Duration {
	s := os.Getenv("NEAR_SOAK")
	if s == "" {
		return 0
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		t.Fatalf("NEAR_SOAK=%q: want a duration such as 30m", s)
	}
	return d
}

// startHogs starts NEAR_SOAK_HOGS (default: one per CPU) busy processes, killed at the
// end of the test.
func startHogs(t *testing.T) int {
	n := runtime.NumCPU()
	if s := os.Getenv("NEAR_SOAK_HOGS"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil || n < 0 {
			t.Fatalf("NEAR_SOAK_HOGS=%q: want a count", s)
		}
	}
	for range n {
		cmd := exec.Command("sh", "-c", "while :; do :; done")
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	}
	return n
}

// TestNearFaults is the near cache's fault suite: processes read through their near
// caches while a writer writes and the faults strike, and internal/testkit/nearcheck counts the
// reads older than MaxStaleness, the non-monotonic reads and the missed own writes.
func TestNearFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("about a minute")
	}
	soak := nearSoak(t)
	if soak > 0 {
		t.Logf("soak of %v beside %d busy processes", soak, startHogs(t))
	}
	until := func(share float64) time.Time { return time.Now().Add(time.Duration(share * float64(soak))) }
	minFailovers := 0
	only := os.Getenv("NEAR_FAULTS")
	if soak > 0 && (only == "" || slices.ContainsFunc(strings.Split(only, ","), func(k string) bool {
		return k == "failover" || k == "kill" || k == "pause"
	})) {
		minFailovers = 20 // a soak of faults that fail over
	}
	t.Run("sentinel", func(t *testing.T) { sentinelFaults(t, until(0.7), minFailovers) })
	t.Run("restart", func(t *testing.T) { restartFaults(t, until(0.25)) })
	t.Run("replica-reads", replicaReads)
	t.Run("control", nearControl)
}

// sentinelRig is a Sentinel group with the traffic of a run over it.
type sentinelRig struct {
	t   *testing.T
	g   *redistest.SentinelGroup
	h   *nearHistory
	run *faultRun

	failovers int
	// clients are the client names (CLIENT SETNAME) of the run's processes and writer.
	clients []string
}

func sentinelFaults(t *testing.T, until time.Time, minFailovers int) {
	g := redistest.StartSentinelGroup(t)
	h := newNearHistory()
	fo := func(name string, dial func(context.Context, string, string) (net.Conn, error)) redis.UniversalClient {
		return redis.NewFailoverClient(&redis.FailoverOptions{MasterName: g.MasterName(), SentinelAddrs: g.Addrs(),
			ClientName: name, Dialer: dial, ContextTimeoutEnabled: true})
	}
	procs := []*nearProc{newNearProc(t, h, 0, fo), newNearProc(t, h, 1, fo)}
	w := fo("nf-writer", nil)
	t.Cleanup(func() { _ = w.Close() })
	s := &sentinelRig{t: t, g: g, h: h, clients: []string{procs[0].name, procs[1].name, "nf-writer"}}
	s.run = startFaultRun(h, w, procs, 2)
	defer s.run.stop()
	time.Sleep(time.Second)
	for cycle := 1; ; cycle++ {
		s.cycle()
		r := h.cut(t, 30*time.Second)
		t.Logf("cycle %d (%d Sentinel failovers so far): %d reads, %d stale, %d non-monotonic, %d missed own writes, %d covered by MaxAge, %d late failed writes",
			cycle, s.failovers, r.Reads, r.Counts[nearcheck.Stale], r.Counts[nearcheck.NonMonotonic], r.Counts[nearcheck.MissedOwnWrite], r.CoveredByMaxAge, r.LateFailedWrites)
		if time.Now().After(until) {
			break
		}
	}
	s.run.stop()
	h.cut(t, 0)
	t.Logf("faults applied: %v; %d Sentinel failovers; %d writes found lost by a failover; failures: %v", h.applied, s.failovers, h.lost, h.errors)
	if s.failovers < minFailovers {
		t.Errorf("%d Sentinel failovers; a soak needs %d", s.failovers, minFailovers)
	}
	judgeNear(t, h)
}

// cycle applies every fault once, in a random order, with a second of quiet after each.
func (s *sentinelRig) cycle() {
	s.run.cold()
	faults := []struct {
		kind string
		f    func() error
	}{
		{"failover", s.failover}, {"kill", s.kill}, {"pause", s.pause},
		{"tracking-kill", s.trackingKill}, {"tracking-freeze", s.trackingFreeze}, {"data-freeze", s.dataFreeze},
		{"flushall", s.flushAll}, {"swapdb", s.swapDB},
	}
	rand.Shuffle(len(faults), func(i, j int) { faults[i], faults[j] = faults[j], faults[i] })
	for _, f := range faults {
		if only := os.Getenv("NEAR_FAULTS"); only != "" && !slices.Contains(strings.Split(only, ","), f.kind) {
			continue
		}
		if err := s.h.fault(f.kind, f.f); err != nil {
			s.t.Errorf("fault %s: %v", f.kind, err)
		}
		time.Sleep(time.Second)
	}
}

// nodeClient is a plain client of addr's database db, with no retries.
func nodeClient(addr string, db int) *redis.Client {
	return redis.NewClient(&redis.Options{Addr: addr, DB: db, ContextTimeoutEnabled: true, MaxRetries: -1})
}

// onMaster runs f on a client of the current master.
func (s *sentinelRig) onMaster(f func(ctx context.Context, c *redis.Client) error) error {
	m := s.g.Master()
	if m == "" {
		return errors.New("no master")
	}
	c := nodeClient(m, 0)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return f(ctx, c)
}

// role is a node's role and, for a replica, whether its link to the master is up.
func role(addr string) (string, bool) {
	c := nodeClient(addr, 0)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	info, err := c.Info(ctx, "replication").Result()
	if err != nil {
		return "", false
	}
	return infoField(info, "role"), infoField(info, "master_link_status") == "up"
}

func infoField(info, name string) string {
	for line := range strings.Lines(info) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), name+":"); ok {
			return v
		}
	}
	return ""
}

// settled waits until the Sentinels report a master other than old (any, with old ""),
// which says it is a master, and every other node is its replica in sync. Its limit is
// a hang detector of two minutes: on a starved machine the Sentinels (down-after 0.5 s)
// may fail over again on their own, and each failover makes the replica sync anew.
func (s *sentinelRig) settled(old string) error {
	deadline := time.Now().Add(2 * time.Minute)
	for {
		m := s.g.Master()
		ok := m != "" && m != old
		state := []string{"sentinels: " + m}
		if m != "" {
			r, _ := role(m)
			ok = ok && r == "master"
			state = append(state, m+": "+r)
		}
		for _, n := range s.g.Nodes() {
			if n != m {
				r, up := role(n)
				ok = ok && r == "slave" && up
				state = append(state, fmt.Sprintf("%s: %s, link up %v", n, r, up))
			}
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("hang detector: no settled group two minutes after a fault (was %q; %s)", old, strings.Join(state, "; "))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// failover is SENTINEL FAILOVER, a planned failover.
func (s *sentinelRig) failover() error {
	unlock := s.holdWrites()
	defer unlock()
	old := s.g.Master()
	sc := redis.NewSentinelClient(&redis.Options{Addr: s.g.Addrs()[0]})
	defer sc.Close()
	// A Sentinel refuses while it has not yet seen the replica in sync since the last
	// fault (NOGOODSLAVE), or while a failover runs (INPROG).
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := sc.Failover(ctx, s.g.MasterName()).Err()
		cancel()
		if err == nil {
			break
		}
		if time.Now().After(deadline) || !strings.Contains(err.Error(), "NOGOODSLAVE") && !strings.Contains(err.Error(), "INPROG") {
			return err
		}
		time.Sleep(200 * time.Millisecond)
	}
	s.failovers++
	if err := s.switched(old); err != nil {
		return err
	}
	unlock()
	return s.settled(old)
}

// holdWrites stops the run's writes (its writers wait) until the function it returns
// is called, which may be called more than once.
//
// The failovers hold them until every client of the run has left the old master
// (switched). A client learns of a new master from its own Sentinel connection, and
// clients learn of it at different times: a writer that has switched writes on the new
// master while a reader that has not still reads the old one, which answers with the
// old value, with or without a near cache (docs/near-cache.md: what the near cache
// cannot do better than the client). That window is go-redis's and Redis's, not the
// near cache's, and on a starved machine it passes MaxStaleness. The writes resume
// once every client is on the new master, while the old one may still think itself
// a master: a near cache that kept tracking the old master would miss them.
func (s *sentinelRig) holdWrites() (unlock func()) {
	s.h.gate.Lock()
	var once sync.Once
	return func() { once.Do(s.h.gate.Unlock) }
}

// switched waits until the Sentinels report a master other than old and no client of
// the run has a connection to old any more (go-redis closes a client's connections to
// the old master when it switches). A hang detector of two minutes.
func (s *sentinelRig) switched(old string) error {
	return s.waitClients(old, func(string) ([]string, bool) {
		on, err := s.clientsOn(old)
		return on, err == nil && len(on) == 0
	})
}

// arrived waits until the Sentinels report a master other than old and every client of
// the run has a connection to it: each has switched, and none will dial old again. A
// hang detector of two minutes.
func (s *sentinelRig) arrived(old string) error {
	return s.waitClients(old, func(m string) ([]string, bool) {
		on, err := s.clientsOn(m)
		return on, err == nil && len(on) == len(s.clients)
	})
}

// waitClients waits until the Sentinels report a master other than old and done,
// called with it, says so, for two minutes at most (a hang detector); done also returns
// the clients it found, for the error.
func (s *sentinelRig) waitClients(old string, done func(master string) (found []string, ok bool)) error {
	deadline := time.Now().Add(2 * time.Minute)
	for {
		m := s.g.Master()
		var found []string
		ok := false
		if m != "" && m != old {
			found, ok = done(m)
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("hang detector: two minutes after a failover, the Sentinels report %q (was %q); clients of the run found: %v", m, old, found)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// clientsOn returns the clients of the run (by name) that have a normal connection
// (not the tracking one) to addr.
func (s *sentinelRig) clientsOn(addr string) ([]string, error) {
	c := nodeClient(addr, 0)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	var on []string
	for _, name := range s.clients {
		ids, err := clientIDs(ctx, c, name, false)
		if err != nil {
			return nil, err
		}
		if len(ids) > 0 {
			on = append(on, name)
		}
	}
	return on, nil
}

// kill kills the master (SIGKILL); once a replica is promoted and every client of the
// run is on it, the old master comes back, empty, as its replica. (A client that had
// not switched yet would dial the old address again and read the empty replica: the
// client's window, as in holdWrites, not the near cache's.)
func (s *sentinelRig) kill() error {
	old, err := s.g.KillMaster()
	if err != nil {
		return err
	}
	if err := s.arrived(old); err != nil {
		return err
	}
	s.failovers++
	if err := s.g.RestartOld(old); err != nil {
		return err
	}
	return s.settled(old)
}

// pause stops the master (SIGSTOP) for 0.2 to 1.5 s: past the Sentinels' down-after
// (0.5 s), they may fail over.
func (s *sentinelRig) pause() error {
	unlock := s.holdWrites() // see holdWrites: a pause may fail over
	defer unlock()
	m := s.g.Master()
	if err := s.g.Pause(m); err != nil {
		return err
	}
	time.Sleep(200*time.Millisecond + rand.N(1300*time.Millisecond))
	if err := s.g.Resume(m); err != nil {
		return err
	}
	time.Sleep(2 * redistest.GroupDownAfter) // a failover under way shows
	if s.g.Master() != m {
		s.failovers++
		if err := s.switched(m); err != nil {
			return err
		}
		unlock()
		return s.settled(m)
	}
	unlock()
	return s.settled("")
}

// trackingKill kills every tracking connection of the master (CLIENT KILL TYPE pubsub).
func (s *sentinelRig) trackingKill() error {
	return s.onMaster(func(ctx context.Context, c *redis.Client) error {
		return c.ClientKillByFilter(ctx, "type", "pubsub").Err()
	})
}

// proc is a process of the run, at random.
func (s *sentinelRig) proc() *nearProc { return s.run.procs[rand.N(len(s.run.procs))] }

// trackingFreeze freezes one process's tracking connection for 1.5 s (a partition of that
// link alone): it is killed, redials through the process's proxies, and they freeze.
func (s *sentinelRig) trackingFreeze() error {
	p := s.proc()
	p.via.Store(true)
	err := s.onMaster(func(ctx context.Context, c *redis.Client) error { return killClients(ctx, c, p.name, true) })
	deadline := time.Now().Add(30 * time.Second)
	for err == nil && !rediscache.NearFresh(p.d) {
		if time.Now().After(deadline) {
			err = errors.New("the tracking connection did not come back through the proxy")
		}
		time.Sleep(5 * time.Millisecond)
	}
	p.via.Store(false)
	if err != nil {
		return err
	}
	return freeze(p, 1500*time.Millisecond)
}

// dataFreeze freezes one process's data connections for 1.5 s: they are killed, the
// process redials them through its proxies for 300 ms, and the proxies freeze.
func (s *sentinelRig) dataFreeze() error {
	p := s.proc()
	p.via.Store(true)
	err := s.onMaster(func(ctx context.Context, c *redis.Client) error { return killClients(ctx, c, p.name, false) })
	time.Sleep(300 * time.Millisecond)
	p.via.Store(false)
	if err != nil {
		return err
	}
	return freeze(p, 1500*time.Millisecond)
}

// freeze freezes p's proxies for d, then resets their connections, dropping what they
// held: a write that timed out while frozen must not reach Redis after its retry and
// the writes that followed it (the history could not order it).
func freeze(p *nearProc, d time.Duration) error {
	p.proxies.Freeze()
	time.Sleep(d)
	p.proxies.Reset()
	p.proxies.Thaw()
	return nil
}

// keys are the keys of the run.
func (s *sentinelRig) keys() []string { return s.run.keys }

// flushAll is FLUSHALL, writers held.
func (s *sentinelRig) flushAll() error {
	return s.exclusive(false, func(ctx context.Context, c *redis.Client) error { return c.FlushAll(ctx).Err() })
}

// swapDB is SWAPDB 0 1, which Redis reports to no near cache: every key is absent
// after it. The cold key is written just before (the processes keep copies of it,
// which nothing else invalidates); the run then waits MaxAge and 2 s, and empties
// database 1.
func (s *sentinelRig) swapDB() error {
	s.run.cold()
	time.Sleep(500 * time.Millisecond)
	if err := s.exclusive(true, func(ctx context.Context, c *redis.Client) error { return c.Do(ctx, "swapdb", 0, 1).Err() }); err != nil {
		return err
	}
	time.Sleep(nearFaultMaxAge + 2*time.Second)
	c := nodeClient(s.g.Master(), 1)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return c.FlushDB(ctx).Err()
}

// exclusive runs f on the master with every writer held, and records it as a write of
// every key to absent.
func (s *sentinelRig) exclusive(silent bool, f func(ctx context.Context, c *redis.Client) error) error {
	s.h.gate.Lock()
	defer s.h.gate.Unlock()
	start := s.h.now()
	if err := s.onMaster(f); err != nil {
		return err
	}
	s.h.writeAll(s.keys(), "", start, silent)
	return nil
}

// aofServer is a redis-server of the test's own with an append-only file synced at
// every write, which it kills (SIGKILL) and starts again on the same port, with its
// data or without.
type aofServer struct {
	t    *testing.T
	dir  string
	port int
	cmd  *exec.Cmd
}

func startAOF(t *testing.T) *aofServer {
	if redistest.Binary() == "" {
		t.Skip("no redis-server on PATH")
	}
	port, err := testproc.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	s := &aofServer{t: t, dir: t.TempDir(), port: port}
	t.Cleanup(s.kill)
	if err := s.start(); err != nil {
		t.Fatal(err)
	}
	return s
}

func (s *aofServer) addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

func (s *aofServer) start() error {
	s.cmd = exec.Command(redistest.Binary(), "--port", strconv.Itoa(s.port), "--bind", "127.0.0.1",
		"--dir", s.dir, "--save", "", "--appendonly", "yes", "--appendfsync", "always",
		"--logfile", filepath.Join(s.dir, "redis.log"))
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		return err
	}
	c := nodeClient(s.addr(), 0)
	defer c.Close()
	deadline := time.Now().Add(30 * time.Second)
	for c.Ping(context.Background()).Err() != nil {
		if time.Now().After(deadline) {
			return errors.New("the restarted redis-server does not answer")
		}
		time.Sleep(10 * time.Millisecond)
	}
	return nil
}

func (s *aofServer) kill() {
	if s.cmd != nil {
		_ = s.cmd.Process.Kill()
		_ = s.cmd.Wait()
		s.cmd = nil
	}
}

// restart kills the server and starts it again, on its append-only file or, with
// empty, without it (the data lost).
func (s *aofServer) restart(empty bool) error {
	s.kill()
	if empty {
		if err := os.RemoveAll(filepath.Join(s.dir, "appendonlydir")); err != nil {
			return err
		}
	}
	return s.start()
}

// restartFaults: a single Redis killed and restarted with its data (an append-only file
// synced at every write) and without (the data lost), and its tracking connections
// killed, in cycles until until.
func restartFaults(t *testing.T, until time.Time) {
	srv := startAOF(t)
	h := newNearHistory()
	single := func(name string, dial func(context.Context, string, string) (net.Conn, error)) redis.UniversalClient {
		return redis.NewClient(&redis.Options{Addr: srv.addr(), ClientName: name, Dialer: dial, ContextTimeoutEnabled: true})
	}
	procs := []*nearProc{newNearProc(t, h, 0, single), newNearProc(t, h, 1, single)}
	w := single("nf-writer", nil)
	t.Cleanup(func() { _ = w.Close() })
	run := startFaultRun(h, w, procs, 2)
	defer run.stop()
	time.Sleep(time.Second)
	for cycle := 1; ; cycle++ {
		run.cold()
		for _, f := range []struct {
			kind string
			f    func() error
		}{
			{"restart-aof", func() error { return srv.restart(false) }},
			{"restart-empty", func() error {
				h.gate.Lock()
				defer h.gate.Unlock()
				start := h.now()
				err := srv.restart(true)
				h.writeAll(run.keys, "", start, false)
				return err
			}},
		} {
			if err := h.fault(f.kind, f.f); err != nil {
				t.Fatalf("fault %s: %v", f.kind, err)
			}
			time.Sleep(2 * time.Second)
		}
		r := h.cut(t, 30*time.Second)
		t.Logf("cycle %d: %d reads, %d stale, %d non-monotonic, %d missed own writes", cycle, r.Reads,
			r.Counts[nearcheck.Stale], r.Counts[nearcheck.NonMonotonic], r.Counts[nearcheck.MissedOwnWrite])
		if time.Now().After(until) {
			break
		}
	}
	run.stop()
	h.cut(t, 0)
	t.Logf("faults applied: %v; failures: %v", h.applied, h.errors)
	judgeNear(t, h)
}

// replicaReads: a near cache over a client that reads from replicas (a Cluster client
// with ReadOnly, over a master and its replica). Either New refuses it, or, while the
// replica lags now and then (its replication link frozen for half a second), no read
// returns a value older than MaxStaleness.
func replicaReads(t *testing.T) {
	m := redistest.StartWith(t)
	link, err := faultproxy.New(m.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer link.Close()
	host, port, _ := net.SplitHostPort(link.Addr())
	rep := redistest.StartWith(t, "--replicaof", host, port)
	deadline := time.Now().Add(30 * time.Second)
	for r, up := role(rep.Addr()); r != "slave" || !up; r, up = role(rep.Addr()) {
		if time.Now().After(deadline) {
			t.Fatal("the replica never synced")
		}
		time.Sleep(20 * time.Millisecond)
	}
	h := newNearHistory()
	ro := func(name string, dial func(context.Context, string, string) (net.Conn, error)) redis.UniversalClient {
		slots := func(context.Context) ([]redis.ClusterSlot, error) {
			return []redis.ClusterSlot{{Start: 0, End: 16383, Nodes: []redis.ClusterNode{{Addr: m.Addr()}, {Addr: rep.Addr()}}}}, nil
		}
		return redis.NewClusterClient(&redis.ClusterOptions{ClusterSlots: slots, ReadOnly: true,
			ClientName: name, Dialer: dial, ContextTimeoutEnabled: true})
	}
	probe := ro("nf-probe", nil)
	defer probe.Close()
	d, err := rediscache.New(rediscache.Options{Client: probe, Near: nearFaultOptions()})
	if err != nil {
		t.Logf("New refuses a near cache over a replica-reading client: %v", err)
		if !errors.Is(err, rediscache.ErrNearReplicaReads) {
			t.Errorf("New: %v; want ErrNearReplicaReads", err)
		}
		return
	}
	_ = d.Close()
	t.Log("New accepts a near cache over a replica-reading client: its reads are checked")
	w := nodeClient(m.Addr(), 0)
	t.Cleanup(func() { _ = w.Close() })
	_ = h.fault("replica-reads", func() error { return nil }) // the whole run
	run := startFaultRun(h, w, []*nearProc{newNearProc(t, h, 0, ro)}, 2)
	defer run.stop()
	time.Sleep(time.Second)
	for range 5 {
		// The replica lags: a write of the cold key invalidates the copies, and their
		// refills read the replica.
		link.Freeze()
		run.cold()
		time.Sleep(500 * time.Millisecond)
		link.Thaw()
		time.Sleep(time.Second)
	}
	run.stop()
	h.cut(t, 0)
	judgeNear(t, h)
}

// nearControl: the suite's power. A naive near cache (copies kept until the end, never
// invalidated, never bypassed, filled with no ticket), one process reading half of its
// reads through it and half from Redis, and writing its own key straight to Redis: the
// checker must find stale reads, non-monotonic reads and missed own writes.
func nearControl(t *testing.T) {
	srv := redistest.Start(t)
	h := newNearHistory()
	c := nodeClient(srv.Addr(), 0)
	t.Cleanup(func() { _ = c.Close() })
	run := startFaultRun(h, c, nil, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	naiveControl(ctx, h, c)
	run.stop()
	r := h.cut(t, 0)
	t.Logf("the naive near cache: %v", r)
	for _, k := range []nearcheck.Kind{nearcheck.Stale, nearcheck.NonMonotonic, nearcheck.MissedOwnWrite} {
		if r.Counts[k] == 0 {
			t.Errorf("no %s reads found in the naive near cache's history", k)
		}
	}
}

// naiveControl is the control process's loop.
func naiveControl(ctx context.Context, h *nearHistory, c *redis.Client) {
	const proc = "control"
	copies := map[string]string{}
	get := func(key string) (string, error) {
		v, err := c.Get(ctx, key).Result()
		if errors.Is(err, redis.Nil) {
			return "", nil
		}
		return v, err
	}
	keys := append(slices.Clone(nfHot), nfOwn(proc))
	for i := 0; ctx.Err() == nil; i++ {
		key := keys[i%len(keys)]
		if i%50 == 0 {
			key = nfOwn(proc)
			v := strconv.Itoa(i + 1)
			start := h.now()
			if c.Set(ctx, key, v, 0).Err() == nil {
				h.write(nearcheck.Write{Key: key, Value: v, Proc: proc, Start: start, Ack: h.now()})
			}
		}
		start := h.now()
		v, ok := copies[key]
		var err error
		if !ok || i%2 == 1 {
			v, err = get(key)
			if !ok && err == nil {
				copies[key] = v
			}
		}
		if err == nil {
			h.read(nearcheck.Read{Key: key, Value: v, Proc: proc, Start: start, End: h.now()})
		}
		time.Sleep(500 * time.Microsecond)
	}
}
