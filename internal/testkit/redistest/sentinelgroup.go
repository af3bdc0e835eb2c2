package redistest

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cachekit/cache/internal/testkit/testproc"
)

// Settings of a [SentinelGroup]'s Sentinels.
const (
	// GroupMasterName is the master name a SentinelGroup's Sentinels monitor.
	GroupMasterName = "groupmaster"
	// GroupQuorum is how many Sentinels must agree that the master is down.
	GroupQuorum = 2
	// GroupDownAfter is the Sentinels' down-after-milliseconds: how long a node must not
	// answer before a Sentinel thinks it down.
	GroupDownAfter = 500 * time.Millisecond
	// GroupFailoverTimeout is the Sentinels' failover-timeout. A failover attempt that
	// fails is retried after twice this.
	GroupFailoverTimeout = 2 * time.Second
)

// SentinelGroup is a Sentinel-managed Redis of one test's own, for failover tests: one
// master, one replica (replicaof the master) and three Sentinels (quorum
// [GroupQuorum], down-after [GroupDownAfter], failover-timeout [GroupFailoverTimeout]),
// all redis-server processes on free loopback ports, with no persistence (save "",
// appendonly no), stopped at the test's cleanup. The test may kill, restart, pause and
// resume the data nodes. Its methods are safe for concurrent use.
type SentinelGroup struct {
	mu         sync.Mutex
	nodes      map[string]*proc // data nodes by address, live or not
	order      []string         // data node addresses, in start order
	sentinels  []*proc
	lastMaster string // the master KillMaster killed, for WaitFailover
}

// StartSentinelGroup starts a [SentinelGroup] for tb alone and waits until the replica
// is in sync and every Sentinel knows the replica and the two other Sentinels (a
// failover needs them to vote), which takes a few seconds. Without redis-server it skips
// the test outside CI and fails it in CI.
func StartSentinelGroup(tb testing.TB) *SentinelGroup {
	tb.Helper()
	if Binary() == "" {
		testproc.Missing(tb, "redistest: redis-server is not on PATH; in CI the Sentinel tests must run (install redis-server)", "redistest: no redis-server on PATH: no Sentinel group of the test's own")
	}
	g := &SentinelGroup{nodes: map[string]*proc{}}
	tb.Cleanup(g.stop)
	master, err := startProc(0, groupNodeArgs(""))
	if err != nil {
		tb.Fatalf("redistest: %v", err)
	}
	g.add(master)
	replica, err := startProc(0, groupNodeArgs(master.addr()))
	if err != nil {
		tb.Fatalf("redistest: %v", err)
	}
	g.add(replica)
	if err := waitFor(10*time.Second, func() error { return linkUp(replica.addr()) }); err != nil {
		tb.Fatalf("redistest: replica %s: %v", replica.addr(), err)
	}
	for range 3 {
		s, err := startProcWith(0, func(dir string) []string {
			// Sentinel rewrites its config file: it must exist and be writable.
			conf := filepath.Join(dir, "sentinel.conf")
			text := fmt.Sprintf("sentinel monitor %[1]s 127.0.0.1 %[2]d %[3]d\n"+
				"sentinel down-after-milliseconds %[1]s %[4]d\n"+
				"sentinel failover-timeout %[1]s %[5]d\n"+
				"sentinel parallel-syncs %[1]s 1\n",
				GroupMasterName, master.port, GroupQuorum, GroupDownAfter.Milliseconds(), GroupFailoverTimeout.Milliseconds())
			_ = os.WriteFile(conf, []byte(text), 0o600)
			return []string{conf, "--sentinel"}
		}, nil)
		if err != nil {
			tb.Fatalf("redistest: Sentinel: %v", err)
		}
		g.mu.Lock()
		g.sentinels = append(g.sentinels, s)
		g.mu.Unlock()
	}
	for _, s := range g.sentinels {
		err := waitFor(20*time.Second, func() error {
			f, err := fields(s.addr(), "SENTINEL MASTER "+GroupMasterName)
			if err != nil {
				return err
			}
			if f["num-slaves"] != "1" || f["num-other-sentinels"] != "2" {
				return fmt.Errorf("knows %s replicas and %s other Sentinels, want 1 and 2", f["num-slaves"], f["num-other-sentinels"])
			}
			return nil
		})
		if err != nil {
			tb.Fatalf("redistest: Sentinel %s: %v", s.addr(), err)
		}
	}
	return g
}

// groupNodeArgs are the arguments of a data node: a replica of master unless master is
// "", and a full sync that starts at once (a master waits 5 s by default for more
// replicas to share a diskless sync).
func groupNodeArgs(master string) func(string) []string {
	return func(string) []string {
		a := []string{"--repl-diskless-sync-delay", "0"}
		if master != "" {
			host, port, _ := strings.Cut(master, ":")
			a = append(a, "--replicaof", host, port)
		}
		return a
	}
}

func (g *SentinelGroup) add(p *proc) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.nodes[p.addr()] = p
	g.order = append(g.order, p.addr())
}

func (g *SentinelGroup) stop() {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, s := range g.sentinels {
		s.stop()
	}
	for _, p := range g.nodes {
		p.stop()
	}
}

// Addrs returns the Sentinels' addresses, for redis.FailoverOptions.SentinelAddrs.
func (g *SentinelGroup) Addrs() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	a := make([]string, len(g.sentinels))
	for i, s := range g.sentinels {
		a[i] = s.addr()
	}
	return a
}

// MasterName returns the name the Sentinels monitor the master under
// ([GroupMasterName]), for redis.FailoverOptions.MasterName.
func (g *SentinelGroup) MasterName() string { return GroupMasterName }

// Nodes returns the addresses of the data nodes (master and replica), in the order they
// were started, whatever their role now and whether or not they run.
func (g *SentinelGroup) Nodes() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.order...)
}

// Master returns the address of the master as the Sentinels report it ("" if none
// answers).
func (g *SentinelGroup) Master() string {
	for _, s := range g.Addrs() {
		if a, err := masterAddr(s); err == nil {
			return a
		}
	}
	return ""
}

// KillMaster kills the current master's process with SIGKILL, as a crash would, and
// returns its address. The Sentinels then fail over to the replica after about
// [GroupDownAfter] and a vote; see WaitFailover.
func (g *SentinelGroup) KillMaster() (string, error) {
	addr := g.Master()
	if addr == "" {
		return "", errors.New("redistest: no Sentinel reports a master")
	}
	g.mu.Lock()
	p := g.nodes[addr]
	g.mu.Unlock()
	if p == nil {
		return "", fmt.Errorf("redistest: the Sentinels report master %s, which is not a node of the group", addr)
	}
	p.stop()
	g.mu.Lock()
	g.lastMaster = addr
	g.mu.Unlock()
	return addr, nil
}

// WaitFailover waits up to timeout until every Sentinel reports a master other than the
// one KillMaster killed last (other than the current one, if KillMaster was not called)
// and that node says it is a master, and returns its address.
func (g *SentinelGroup) WaitFailover(timeout time.Duration) (string, error) {
	g.mu.Lock()
	old := g.lastMaster
	g.mu.Unlock()
	if old == "" {
		old = g.Master()
	}
	var newMaster string
	err := waitFor(timeout, func() error {
		newMaster = ""
		for _, s := range g.Addrs() {
			a, err := masterAddr(s)
			if err != nil {
				return fmt.Errorf("Sentinel %s: %w", s, err)
			}
			if a == old {
				return fmt.Errorf("Sentinel %s still reports %s", s, a)
			}
			if newMaster != "" && a != newMaster {
				return fmt.Errorf("Sentinels disagree: %s and %s", newMaster, a)
			}
			newMaster = a
		}
		f, err := fields(newMaster, "INFO replication")
		if err != nil {
			return fmt.Errorf("new master %s: %w", newMaster, err)
		}
		if f["role"] != "master" {
			return fmt.Errorf("new master %s has role %q", newMaster, f["role"])
		}
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("redistest: no failover from %s within %v: %w", old, timeout, err)
	}
	return newMaster, nil
}

// RestartOld starts a killed node again on its port, empty (there is no persistence),
// as a replica of the master the Sentinels now report, so that it copies the master's
// data at once: what the Sentinels would make of it themselves, but they wait 8 s or
// more before they reconfigure a returning node. If the Sentinels still report addr as
// the master (no failover yet), it starts as an empty master, which they then keep or
// reconfigure. It is an error if the node still runs.
func (g *SentinelGroup) RestartOld(addr string) error {
	g.mu.Lock()
	old := g.nodes[addr]
	g.mu.Unlock()
	if old == nil {
		return fmt.Errorf("redistest: %s is not a node of the group", addr)
	}
	select {
	case <-old.Done:
	default:
		return fmt.Errorf("redistest: %s still runs", addr)
	}
	m := g.Master()
	if m == addr {
		m = ""
	}
	p, err := startProc(old.port, groupNodeArgs(m))
	if err != nil {
		return fmt.Errorf("redistest: restart %s: %w", addr, err)
	}
	g.mu.Lock()
	g.nodes[addr] = p
	g.mu.Unlock()
	return nil
}

// Pause stops a node's process with SIGSTOP: it neither answers nor reads its sockets,
// while the kernel still accepts what others send it, up to its buffers. Resume
// continues it. Pausing a node past [GroupDownAfter] makes the Sentinels think it down.
func (g *SentinelGroup) Pause(addr string) error { return g.signal(addr, sigStop) }

// Resume continues a node stopped with Pause (SIGCONT).
func (g *SentinelGroup) Resume(addr string) error { return g.signal(addr, sigCont) }

func (g *SentinelGroup) signal(addr string, sig os.Signal) error {
	if sig == nil {
		return errors.New("redistest: pausing a process needs a Unix system")
	}
	g.mu.Lock()
	p := g.nodes[addr]
	g.mu.Unlock()
	if p == nil {
		return fmt.Errorf("redistest: %s is not a node of the group", addr)
	}
	return p.Cmd.Process.Signal(sig)
}

// masterAddr asks a Sentinel for the group's master address.
func masterAddr(sentinel string) (string, error) {
	f, err := multiBulk(sentinel, "SENTINEL get-master-addr-by-name "+GroupMasterName)
	if err != nil {
		return "", err
	}
	if len(f) != 2 {
		return "", fmt.Errorf("get-master-addr-by-name: %q", f)
	}
	return f[0] + ":" + f[1], nil
}

// linkUp reports whether a replica is in sync with its master.
func linkUp(addr string) error {
	f, err := fields(addr, "INFO replication")
	if err != nil {
		return err
	}
	if f["master_link_status"] != "up" {
		return fmt.Errorf("master_link_status %q", f["master_link_status"])
	}
	return nil
}

// fields runs an INFO command (name:value lines) or a SENTINEL MASTER command (a flat
// array of names and values) and returns its fields.
func fields(addr, cmd string) (map[string]string, error) {
	m := map[string]string{}
	if strings.HasPrefix(strings.ToUpper(cmd), "INFO") {
		err := command(addr, cmd, func(text string) error {
			for _, line := range strings.Split(text, "\n") {
				if k, v, ok := strings.Cut(strings.TrimSpace(line), ":"); ok {
					m[k] = v
				}
			}
			return nil
		})
		return m, err
	}
	f, err := multiBulk(addr, cmd)
	if err != nil {
		return nil, err
	}
	for i := 0; i+1 < len(f); i += 2 {
		m[f[i]] = f[i+1]
	}
	return m, nil
}

// waitFor calls f every 20 ms until it returns nil or timeout passes, and then returns
// f's last error.
func waitFor(timeout time.Duration, f func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// multiBulk sends one inline command to addr and reads a flat array reply (bulk
// strings, integers, simple strings) as strings.
func multiBulk(addr, cmd string) ([]string, error) {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte(cmd + "\r\n")); err != nil {
		return nil, err
	}
	r := bufio.NewReader(c)
	line, err := readLine(r)
	if err != nil {
		return nil, err
	}
	if !strings.HasPrefix(line, "*") {
		return nil, fmt.Errorf("%s: reply %q", cmd, line)
	}
	n, err := strconv.Atoi(line[1:])
	if err != nil || n < 0 {
		return nil, fmt.Errorf("%s: reply %q", cmd, line)
	}
	out := make([]string, 0, n)
	for range n {
		line, err := readLine(r)
		if err != nil {
			return nil, err
		}
		switch {
		case strings.HasPrefix(line, "$"):
			size, err := strconv.Atoi(line[1:])
			if err != nil || size < 0 {
				return nil, fmt.Errorf("%s: element %q", cmd, line)
			}
			buf := make([]byte, size+2)
			if _, err := io.ReadFull(r, buf); err != nil {
				return nil, err
			}
			out = append(out, string(buf[:size]))
		case strings.HasPrefix(line, ":"), strings.HasPrefix(line, "+"):
			out = append(out, line[1:])
		default:
			return nil, fmt.Errorf("%s: element %q", cmd, line)
		}
	}
	return out, nil
}

func readLine(r *bufio.Reader) (string, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	return strings.TrimRight(line, "\r\n"), nil
}
