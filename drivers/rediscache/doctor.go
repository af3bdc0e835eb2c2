package rediscache

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"

	"github.com/cachekit/cache/driver"
)

// The minimum Redis versions: the driver's (GETDEL) and the near cache's (CLIENT
// TRACKING).
const (
	minVersion         = "6.2"
	minTrackingVersion = "6.0"
)

// Doctor checks the settings of the Redis the driver uses against what locks and
// cache.Once need, and returns one finding per check (see [driver.Finding]):
//
//   - "topology": one node, a Sentinel-managed master, a Cluster (its cluster_state), or a
//     client-side Ring (a warning: a shard that goes away takes its locks with it).
//   - "version": the Redis version, an error below 6.2.
//   - "tracking": CLIENT TRACKING (Redis 6), which the near cache (Options.Near) needs.
//   - "maxmemory-policy": an error when a policy that evicts keys (allkeys-*, volatile-*)
//     meets a maxmemory limit: under memory pressure Redis then drops locks (every lock
//     has a TTL, so volatile-* drops them first) and Once results, and a second holder
//     acquires a held lock; a warning when there is no limit yet.
//   - "persistence": a warning without appendonly: a restart loses every lock and Once
//     result (all of them with save "", those since the last snapshot with save).
//   - "replicas": the connected replicas against Options.LockReplicas (an error when there
//     are fewer, since every lock acquisition then fails), a warning for replicas without
//     LockReplicas (a failover can lose the locks the master had not passed on), and
//     min-replicas-to-write; an error when the node is a replica.
//
// On a Cluster and a Ring the node checks run on every master and name it. A setting
// that cannot be read (CONFIG disabled, as on some managed services) is a warning that
// says what to check by hand. A Redis that cannot be reached is one error, "connection".
// Doctor changes nothing on the server.
func (d *Driver) Doctor(ctx context.Context) []driver.Finding {
	if err := d.check(ctx); err != nil {
		return []driver.Finding{connectionFinding(err)}
	}
	var nodes nodeFindings
	err := d.eachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
		nodes.add(c.Options().Addr, d.checkNode(ctx, c))
		return nil
	})
	if err != nil {
		return []driver.Finding{connectionFinding(err)}
	}
	out := d.topologyFindings(ctx)
	return append(out, nodes.all()...)
}

// nodeFindings gathers the findings of each master, checked concurrently on a Cluster.
type nodeFindings struct {
	mu     sync.Mutex
	byAddr map[string][]driver.Finding
}

func (n *nodeFindings) add(addr string, fs []driver.Finding) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.byAddr == nil {
		n.byAddr = map[string][]driver.Finding{}
	}
	n.byAddr[addr] = fs
}

// all returns the findings by address, each message naming its node when there are
// several.
func (n *nodeFindings) all() []driver.Finding {
	var out []driver.Finding
	for _, addr := range slices.Sorted(maps.Keys(n.byAddr)) {
		for _, f := range n.byAddr[addr] {
			if len(n.byAddr) > 1 {
				f.Message = "node " + addr + ": " + f.Message
			}
			out = append(out, f)
		}
	}
	return out
}

func connectionFinding(err error) driver.Finding {
	return driver.Finding{Severity: driver.SeverityError, Check: "connection",
		Message: fmt.Sprintf("cannot reach Redis: %v", err),
		Fix:     "check the URL, that Redis runs, and that this host may connect to it"}
}

// eachMaster calls fn with a client of each master: the one node, or every master of
// a Cluster or shard of a Ring.
func (d *Driver) eachMaster(ctx context.Context, fn func(context.Context, *redis.Client) error) error {
	switch c := d.lockc.(type) {
	case *redis.ClusterClient:
		return c.ForEachMaster(ctx, fn)
	case *redis.Ring:
		return c.ForEachShard(ctx, fn)
	case *redis.Client:
		return fn(ctx, c)
	}
	return fmt.Errorf("cannot check a %T", d.lockc)
}

func (d *Driver) topologyFindings(ctx context.Context) []driver.Finding {
	f := driver.Finding{Check: "topology"}
	switch c := d.c.(type) {
	case *redis.ClusterClient:
		info, err := c.ClusterInfo(ctx).Result()
		state := infoField(info, "cluster_state")
		switch {
		case err != nil:
			f.Severity, f.Message = driver.SeverityWarning, fmt.Sprintf("Cluster: CLUSTER INFO failed: %v", err)
		case state != "ok":
			f.Severity, f.Message = driver.SeverityError, fmt.Sprintf("Cluster state %q: commands on the slots without a master fail", state)
			f.Fix = "repair the Cluster (redis-cli --cluster check)"
		default:
			f.Message = fmt.Sprintf("Cluster of %s masters, state ok", infoField(info, "cluster_size"))
		}
	case *redis.Ring:
		f.Severity = driver.SeverityWarning
		f.Message = "client-side sharding (Ring): no failover, and a shard that is removed or unreachable takes its locks and Once results with it"
		f.Fix = "use a Redis Cluster, or Sentinel, for locks and Once"
	case *redis.Client:
		f.Message = "one node"
		if c.Options().Addr == failoverAddr {
			f.Message = "a Sentinel-managed master (failover client)"
		}
	}
	return []driver.Finding{f}
}

// nodeConfig is what checkNode reads from one node.
type nodeConfig struct {
	info   map[string]string // INFO server and replication
	config map[string]string // CONFIG GET, for the parameters it could read
	errs   map[string]error  // CONFIG GET's failures, by parameter
}

var configParams = []string{"maxmemory", "maxmemory-policy", "appendonly", "appendfsync", "save", "min-replicas-to-write"}

func readNode(ctx context.Context, c *redis.Client) (nodeConfig, error) {
	n := nodeConfig{info: map[string]string{}, config: map[string]string{}, errs: map[string]error{}}
	for _, section := range []string{"server", "replication"} {
		s, err := c.Info(ctx, section).Result()
		if err != nil {
			return n, err
		}
		maps.Copy(n.info, parseInfo(s))
	}
	cmds := make([]*redis.MapStringStringCmd, len(configParams))
	_, _ = c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, param := range configParams {
			cmds[i] = p.ConfigGet(ctx, param)
		}
		return nil
	})
	for i, param := range configParams {
		m, err := cmds[i].Result()
		v, ok := m[param]
		switch {
		case err != nil:
			n.errs[param] = err
		case !ok:
			n.errs[param] = fmt.Errorf("CONFIG GET %s returned nothing", param)
		default:
			n.config[param] = v
		}
	}
	return n, nil
}

func (d *Driver) checkNode(ctx context.Context, c *redis.Client) []driver.Finding {
	n, err := readNode(ctx, c)
	if err != nil {
		return []driver.Finding{connectionFinding(err)}
	}
	version := n.info["redis_version"]
	return []driver.Finding{
		versionFinding(version),
		d.trackingFinding(version),
		n.evictionFinding(),
		n.persistenceFinding(),
		n.replicasFinding(d.replicas),
	}
}

func versionFinding(v string) driver.Finding {
	f := driver.Finding{Check: "version", Message: "Redis " + v}
	if versionBelow(v, minVersion) {
		f.Severity = driver.SeverityError
		f.Message += ": the driver needs Redis " + minVersion + " or later (GETDEL)"
		f.Fix = "upgrade Redis"
	}
	return f
}

func (d *Driver) trackingFinding(v string) driver.Finding {
	f := driver.Finding{Check: "tracking"}
	switch supported := !versionBelow(v, minTrackingVersion); {
	case supported && d.near != nil:
		f.Message = "CLIENT TRACKING available; the near cache is on"
	case supported:
		f.Message = "CLIENT TRACKING available: the near cache (Options.Near) can be turned on"
	case d.near != nil:
		f.Severity, f.Message = driver.SeverityError, "Redis "+v+" has no CLIENT TRACKING, which the near cache needs"
		f.Fix = "upgrade Redis to " + minTrackingVersion + " or later, or turn the near cache off"
	default:
		f.Message = "Redis " + v + " has no CLIENT TRACKING: the near cache cannot be used"
	}
	return f
}

// unreadable is the warning for a setting CONFIG GET could not read.
func (n nodeConfig) unreadable(check, param string) (driver.Finding, bool) {
	err, failed := n.errs[param]
	if !failed {
		return driver.Finding{}, false
	}
	return driver.Finding{Severity: driver.SeverityWarning, Check: check,
		Message: fmt.Sprintf("cannot read %s: %v", param, err),
		Fix:     "check " + param + " by hand (CONFIG GET may be disabled or renamed)"}, true
}

func (n nodeConfig) evictionFinding() driver.Finding {
	const check = "maxmemory-policy"
	for _, p := range []string{"maxmemory-policy", "maxmemory"} {
		if f, bad := n.unreadable(check, p); bad {
			return f
		}
	}
	policy := n.config["maxmemory-policy"]
	limit, _ := strconv.ParseInt(n.config["maxmemory"], 10, 64)
	f := driver.Finding{Check: check}
	evicts := strings.HasPrefix(policy, "allkeys-") || strings.HasPrefix(policy, "volatile-")
	what := "evicts keys"
	if strings.HasPrefix(policy, "volatile-") {
		what = "evicts keys with a TTL, and every lock has one, so locks go first"
	}
	switch {
	case !evicts && limit > 0:
		f.Message = fmt.Sprintf("%s with maxmemory %s: no key is evicted; writes fail (OOM) once memory is full", policy, bytesText(limit))
	case !evicts:
		f.Message = policy + ", no maxmemory limit: no key is evicted"
	case limit > 0:
		f.Severity = driver.SeverityError
		f.Message = fmt.Sprintf("%s with maxmemory %s %s under memory pressure: a held lock can vanish (a second holder acquires it) and Once can run again", policy, bytesText(limit), what)
		f.Fix = "CONFIG SET maxmemory-policy noeviction (and CONFIG REWRITE), or keep locks and Once on a Redis of their own"
	default:
		f.Severity = driver.SeverityWarning
		f.Message = fmt.Sprintf("%s %s once a maxmemory limit is set; none is set now", policy, what)
		f.Fix = "CONFIG SET maxmemory-policy noeviction before setting maxmemory"
	}
	return f
}

func (n nodeConfig) persistenceFinding() driver.Finding {
	const check = "persistence"
	for _, p := range []string{"appendonly", "save"} {
		if f, bad := n.unreadable(check, p); bad {
			return f
		}
	}
	f := driver.Finding{Check: check}
	save := strings.TrimSpace(n.config["save"])
	switch {
	case n.config["appendonly"] == "yes":
		f.Message = "appendonly yes (appendfsync " + n.config["appendfsync"] + "): a restart keeps locks and Once results"
	case save != "":
		f.Severity = driver.SeverityWarning
		f.Message = fmt.Sprintf("appendonly no, RDB snapshots only (save %q): a restart loses the locks and Once results written since the last snapshot, and Once runs again for them", save)
		f.Fix = "CONFIG SET appendonly yes (and CONFIG REWRITE)"
	default:
		f.Severity = driver.SeverityWarning
		f.Message = `no persistence (appendonly no, save ""): a restart empties Redis, every lock is gone and every Once runs again`
		f.Fix = "CONFIG SET appendonly yes (and CONFIG REWRITE)"
	}
	return f
}

func (n nodeConfig) replicasFinding(lockReplicas int) driver.Finding {
	f := driver.Finding{Check: "replicas"}
	if role := n.info["role"]; role != "master" {
		f.Severity = driver.SeverityError
		f.Message = fmt.Sprintf("this node is a replica (role %s): writes fail (READONLY)", role)
		f.Fix = "point the driver at the master, or at Sentinel with a failover client"
		return f
	}
	connected, _ := strconv.Atoi(n.info["connected_slaves"])
	minWrite := n.config["min-replicas-to-write"]
	if minWrite == "" {
		minWrite = "unknown"
	}
	tail := fmt.Sprintf(", min-replicas-to-write %s", minWrite)
	switch {
	case lockReplicas > connected:
		f.Severity = driver.SeverityError
		f.Message = fmt.Sprintf("LockReplicas %d but %s connected%s: every lock acquisition fails (ErrNotReplicated)", lockReplicas, replicasText(connected), tail)
		f.Fix = "lower LockReplicas to the replicas that can be promoted, or connect the replicas"
	case lockReplicas > 0:
		f.Message = fmt.Sprintf("LockReplicas %d, %s connected%s", lockReplicas, replicasText(connected), tail)
	case connected > 0:
		f.Severity = driver.SeverityWarning
		f.Message = fmt.Sprintf("%s connected but LockReplicas 0%s: a failover can lose the locks and Once results the master had not passed on", replicasText(connected), tail)
		f.Fix = "set LockReplicas (rediscache.Options) to the number of replicas that can be promoted"
	default:
		f.Message = "no replicas" + tail + ": a failover is not possible; losing the node loses its data (see persistence)"
	}
	return f
}

func replicasText(n int) string {
	if n == 1 {
		return "1 replica"
	}
	return strconv.Itoa(n) + " replicas"
}

// parseInfo reads INFO's "field:value" lines.
func parseInfo(s string) map[string]string {
	m := map[string]string{}
	for line := range strings.Lines(s) {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), ":"); ok && !strings.HasPrefix(k, "#") {
			m[k] = v
		}
	}
	return m
}

func infoField(s, field string) string { return parseInfo(s)[field] }

// versionBelow reports whether the version v ("7.2.4") is below min ("6.2"). A version
// it cannot read is not below.
func versionBelow(v, min string) bool {
	a, b := strings.Split(v, "."), strings.Split(min, ".")
	for i := range b {
		if i >= len(a) {
			return true
		}
		x, err1 := strconv.Atoi(a[i])
		y, err2 := strconv.Atoi(b[i])
		if err1 != nil || err2 != nil {
			return false
		}
		if x != y {
			return x < y
		}
	}
	return false
}

// bytesText is n bytes as Redis's configuration writes it: 100mb, 2gb.
func bytesText(n int64) string {
	for _, u := range []struct {
		unit string
		size int64
	}{{"gb", 1 << 30}, {"mb", 1 << 20}, {"kb", 1 << 10}} {
		if n >= u.size && n%u.size == 0 {
			return strconv.FormatInt(n/u.size, 10) + u.unit
		}
	}
	return strconv.FormatInt(n, 10) + "b"
}
