// Package rediscache is the Redis driver, on go-redis v9 (github.com/redis/go-redis/v9).
//
// It works on anything that is a redis.UniversalClient: a single node (*redis.Client), a
// Sentinel-managed master (redis.NewFailoverClient, also a *redis.Client), a Redis
// Cluster (*redis.ClusterClient) and a client-side sharded *redis.Ring. Give it a client
// you built (Options.Client; the driver never closes it) or a URL (Options.URL; the
// driver builds the client and closes it in Close):
//
//	redis://[user:password@]host:port[/db][?dial_timeout=3s&pool_size=20...]  one node
//	rediss://...                                     one node over TLS
//	unix://[user:password@]/path/to/redis.sock?db=0   one node over a Unix socket
//	redis://host1:port1,host2:port2,host3:port3       Cluster, from several seed addresses
//	redis://host1:port1?addr=host2:port2&addr=...     Cluster, go-redis's own cluster URL
//	redis+cluster://host:port (or rediss+cluster://)  Cluster, from one seed address
//
// Importing the package registers these schemes with the registry package
// (registry.Open, registry.FromEnv), which also takes the driver's options as URL
// parameters (near=true, lock_replicas=1, ...; see docs/configuration.md).
//
// The query parameters of Options.URL are go-redis's (redis.ParseURL,
// redis.ParseClusterURL). A bad URL is an error from New that never repeats the
// password. A client built from a URL has ContextTimeoutEnabled set, so that a context
// deadline bounds every network wait; with Options.Client, set it on your client for the
// same behaviour. Sentinel has no URL form here: build a redis.NewFailoverClient and
// pass it as Options.Client. Redis 6.2 or later is required (GETDEL); Redis 7 is what
// the tests run.
//
// # Wire format
//
// What a service in another language sees in Redis: the key is exactly the final key the
// manager built (prefix + "." + key); the value is the codec's bytes with no envelope
// (JSON by default: a Go string is "abc" with its quotes, a struct a JSON object); expiry
// is Redis's own TTL (PX, in milliseconds, rounded up: a TTL under 1 ms is 1 ms, never
// "no expiry"); a counter is a bare decimal integer that INCRBY works on; a lock is the
// lock key holding a JSON string that starts with the owner label. Two extras live in
// names of their own: a fenced lock's counter is the key "<lock key>.|fence" (see
// [FenceKey]), and a release is announced on the Pub/Sub channel "<key>:released".
//
// # Commands
//
// Every operation on one key is one round trip and atomic on the server:
//
//   - Get: GET. Set: SET PX. Create: SET NX PX. Update: SET XX PX. TTL: PTTL.
//   - Lock release (CompareAndDelete): one Lua script, GET and DEL if the value is still
//     the caller's token, then PUBLISH on "<key>:released". Lock renewal (Extend): GET
//     and PEXPIRE if still the caller's. CompareAndSwap: GET and SET if unchanged, then
//     PUBLISH. Fenced create (CreateFenced): EXISTS, INCR of the fence counter, TIME
//     (the counter is raised to the server's clock in microseconds if that is higher),
//     SET PX.
//     Scripts run with EVALSHA (EVAL the first time a node lacks them). Releases and
//     renewals run on a fail-fast client of the driver's own (see Driver.Extend).
//   - Increment: INCRBY/DECRBY when there is no TTL for a new counter; otherwise one Lua
//     script (EXISTS, INCRBY, PEXPIRE only if the counter is new). An existing counter
//     keeps its TTL. A value that is not an integer, and an overflow, match
//     driver.ErrNotInteger and leave the value alone.
//   - Pull: GETDEL.
//   - GetMany: MGET; on a Cluster one MGET per hash slot, pipelined, so never CROSSSLOT.
//     Keys an MGET missed get a TYPE each, pipelined, so that a key of another type is
//     [ErrWrongType] as it is for Get, never a miss.
//     SetMany: SETs, pipelined. Delete: DEL, per hash slot on a Cluster.
//   - DeleteNamespace(ns): DEL ns, then SCAN MATCH "<ns>.*" (glob characters of ns
//     escaped) and UNLINK in batches, on every master of a Cluster: it never touches
//     "nsX". It is not atomic: a key written under ns while it runs may survive.
//   - Flush: FLUSHDB (on every master of a Cluster), but only with Options.OwnsDatabase;
//     otherwise it refuses with [ErrSharedDatabase], because a Redis database is usually
//     shared with other applications. A cache with a prefix never needs it: its Flush
//     deletes only its own keys.
//   - Watch: one subscriber connection per driver, opened by the first Watch, shared by
//     all watches; see [Driver.Watch].
//
// # Batching
//
// Under concurrency the single-key commands above go out in pipelines shared by the
// driver's callers (go-redis's automatic pipelining): the commands that arrive while a
// pipeline is in flight go together in the next one, per master on a Cluster, so many
// concurrent callers share a few round trips instead of taking one pooled connection
// each. A caller that is alone sends its command directly, as without batching. Each
// caller still waits for its own answer, and its context still ends its wait. Multi-key
// commands, WAIT, Watch and a lock's renewal are never batched. Options.NoBatch turns it
// off; see there for what else differs.
//
// # Replicas
//
// Redis replicates asynchronously, so a lock the master has not yet passed on dies with
// it in a failover. With Options.LockReplicas, lock acquisitions and renewals count only
// once WAIT reports that many replicas have them, sent in one pipeline with the write;
// see [Options] for what that guarantees and what it does not. Fencing numbers follow
// the server's clock (see [Driver.CreateFenced]), so they keep growing when the counter
// is lost with a master or a restart.
//
// # When Redis is down
//
// Every method returns an error, never a miss and never "someone else holds the lock".
// The first commands fail after go-redis's retries (by default 5 dials 100 ms apart, and
// 3 retries of the command: max_retries and dial_timeout in the URL, DialerRetries and
// MaxRetries on a client you build) or at the context's deadline, whichever comes first.
// Then the circuit breaker ([BreakerOptions], on by default) confirms with a PING of its
// own that Redis is unreachable and opens: commands fail at once with an error matching
// [ErrUnavailable], until a PING, sent every Cooldown, is answered again. Nothing needs
// restarting. To keep serving reads from the loader meanwhile, see cache.Config.FailOpen;
// locks always fail closed. docs/outages.md has the details.
package rediscache

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"math"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cachekit/cache/driver"
)

// Options configure a [Driver]. Exactly one of Client and URL must be set.
type Options struct {
	// Client is the go-redis client to use. The driver never closes it.
	Client redis.UniversalClient
	// URL is where to connect; the driver builds the client and closes it in Close. See
	// the package doc for the forms.
	URL string
	// DefaultTTL is used when a caller passes a TTL of 0. Default: 0, no expiry.
	DefaultTTL time.Duration
	// Codec turns values into the bytes stored in Redis. Default: driver.JSON.
	Codec driver.Codec
	// OwnsDatabase says that nothing but this driver keeps data in the database (every
	// database of every master, on a Cluster), so that Flush may run FLUSHDB. Default:
	// false, and Flush without a prefix returns [ErrSharedDatabase].
	OwnsDatabase bool
	// LockReplicas, when > 0, makes the writes a lock depends on count only once at least
	// LockReplicas replicas of the key's master have acknowledged them: every
	// create-if-absent (SetIf IfAbsent: a lock's acquisition, and also SetOptions
	// OnConflict Create and every other conditional create of the manager, which cannot
	// be told apart), every renewal (Extend) and every fenced acquisition
	// (CreateFenced). Each is sent together with WAIT LockReplicas <timeout>, in one
	// pipeline on one connection. When WAIT reports fewer replicas: an acquisition
	// removes what it wrote (a best-effort compare-and-delete) and returns an error
	// matching [ErrNotReplicated], never "not written", which would read as contention; a
	// renewal returns that error, so the manager cancels fn's ctx with ErrLockLost; a
	// fencing number is not handed out. A write that did not happen (the key was held,
	// the token did not match) returns as without LockReplicas.
	//
	// What it guarantees: a lock acquired or renewed with LockReplicas = N is on N
	// replicas when the call returns, so it survives the loss of its master if one of
	// those N is promoted, with its expiry (Redis 7 replicates SET PX as SET PXAT and
	// PEXPIRE as PEXPIREAT, absolute times). Sentinel and Cluster promote the replica
	// with the most data, but a replica that had not acknowledged can still be promoted
	// (the others down too, or a replica-priority that prefers it), and the lock is then
	// lost: set LockReplicas to the number of replicas that can be promoted.
	//
	// What it does not guarantee: an expiry is an absolute time on the new master's
	// clock, so a clock that is ahead, or jumps forward, there expires the lock early. On
	// a Cluster, WAIT counts the replicas of the key's master only (each node replicates
	// on its own), which is what a single-key lock needs. A partition that isolates the
	// master with the clients on its side, while the other side promotes a replica, still
	// gives two holders when the write and its acknowledgements were in flight; so does a
	// master that loses its data and restarts before the failover. Use fencing tokens
	// where a second holder must not write. WAIT does not make Redis strongly consistent.
	//
	// LockReplicas needs a *redis.Client (a single node or a Sentinel failover client) or
	// a *redis.ClusterClient; New refuses it on another client. Default: 0, no WAIT: a
	// write counts when the master has it.
	LockReplicas int
	// LockReplicasTimeout is how long WAIT waits for LockReplicas acknowledgements, and
	// less when the call's context ends sooner (three quarters of what is left of it).
	// Redis checks the timeout of a blocked command on its cron, hz times a second, so a
	// WAIT that times out answers up to 1/hz later (100 ms at the default hz 10): a lock
	// write that too few replicas acknowledge fails after LockReplicasTimeout plus up to
	// 100 ms, or at the context's deadline if the client has ContextTimeoutEnabled. The
	// client's ReadTimeout must be longer than LockReplicasTimeout + 100 ms. When every
	// replica is in sync, WAIT answers as soon as they acknowledge (a round trip to the
	// slowest of the LockReplicas fastest replicas). Default:
	// [DefaultLockReplicasTimeout] (100 ms).
	LockReplicasTimeout time.Duration
	// NoBatch turns off batching. By default the driver's single-key commands (Get, Set,
	// SetIf, Pull, Increment, TTL, CompareAndSwap, CreateFenced, and a lock's release)
	// go through go-redis's automatic pipelining whenever another command of the driver
	// is in flight: the commands of concurrent callers are queued and sent together, one
	// pipeline per round trip (per master on a Cluster), instead of one command per
	// pooled connection per round trip; a caller that is alone sends its command
	// directly, as with NoBatch. See docs/benchmarks.md for what it gains (several times
	// the throughput at 64 and 256 concurrent callers) and what it costs (nothing
	// measurable for one caller).
	//
	// What differs with batching, for the commands it batches: go-redis runs a pipeline
	// on a context of its own, so a caller's deadline ends its wait but cannot take back
	// a command already queued (as a deadline cannot take back a command already
	// written); go-redis's ProcessPipelineHook, not ProcessHook, sees the batched
	// commands (tracing shows pipelines); a release under concurrency runs in the
	// pipelines of the driver's client (its retries and dial settings) rather than on
	// the fail-fast lock client, so against a stopped Redis, before the circuit breaker
	// opens, it fails after the client's redials instead of at once (a renewal, Extend,
	// is never batched). The
	// autopipeliner is go-redis's, cached on the client and shared with its other users
	// (the first one's AutoPipelineOptions win); it stops when the client is closed,
	// and if someone closes it earlier the driver sends directly again.
	NoBatch bool
	// Near, when set, keeps a near cache: decoded copies of the values the manager reads,
	// in process, dropped as soon as Redis reports (server-assisted client-side caching,
	// CLIENT TRACKING) that their key changed. See [NearOptions] and docs/near-cache.md.
	// Default: nil, off.
	Near *NearOptions
	// Breaker configures the circuit breaker that makes the driver fail fast while Redis
	// cannot be reached. See [BreakerOptions].
	Breaker BreakerOptions
}

// ErrSharedDatabase is returned, wrapped, by Flush when Options.OwnsDatabase is false. It
// matches errors.ErrUnsupported.
var ErrSharedDatabase = fmt.Errorf("refusing to FLUSHDB a database that other applications may share (set Options.OwnsDatabase if the driver owns it, or give the cache a prefix so that Flush deletes only its keys): %w", errors.ErrUnsupported)

// Driver is the Redis driver. Its methods are safe for concurrent use.
type Driver struct {
	c           redis.UniversalClient
	topo        topology
	owns        bool // the driver built c and closes it
	ownsDB      bool
	defaultTTL  time.Duration
	codec       driver.Codec
	closed      atomic.Bool
	hub         hub                   // Watch's subscriber connection
	lockc       redis.UniversalClient // Extend's and CompareAndDelete's (see lockClient)
	ownsLockc   bool
	replicas    int           // Options.LockReplicas
	replTimeout time.Duration // Options.LockReplicasTimeout
	exec        processor     // c, or batched on c (see Options.NoBatch)
	release     processor     // CompareAndDelete's: lockc, or batched on c (see New)
	execOnce    processor     // exec, without go-redis's retries (see noRetry)
	releaseOnce processor     // release, without go-redis's retries
	lockOnce    processor     // lockc, without go-redis's retries
	near        *near         // Options.Near; nil: off
	brk         *breaker      // Options.Breaker; nil: off
}

// topology decides how multi-key commands are split.
type topology uint8

const (
	// topoSingle: one node (*redis.Client, Sentinel included); multi-key commands are free.
	topoSingle topology = iota
	// topoCluster: *redis.ClusterClient; a multi-key command must stay in one hash slot.
	topoCluster
	// topoSharded: *redis.Ring or a client we do not know; one key per command.
	topoSharded
)

var (
	_ driver.Driver                           = (*Driver)(nil)
	_ driver.Atomic                           = (*Driver)(nil)
	_ driver.KeySpace                         = (*Driver)(nil)
	_ driver.Batcher                          = (*Driver)(nil)
	_ driver.DefaultTTLer                     = (*Driver)(nil)
	_ driver.Encoder                          = (*Driver)(nil)
	_ driver.TTLReader                        = (*Driver)(nil)
	_ interface{ OnBreaker(func(open bool)) } = (*Driver)(nil) // the manager's breaker events
	_ interface{ OnNear(func(serving bool)) } = (*Driver)(nil) // the manager's near tier events
)

var (
	//go:embed lua/compare_and_delete.lua
	compareAndDeleteLua string
	//go:embed lua/increment.lua
	incrementLua string
	//go:embed lua/compare_and_swap.lua
	compareAndSwapLua string
	//go:embed lua/extend.lua
	extendLua string
	//go:embed lua/create_fenced.lua
	createFencedLua string

	compareAndDeleteScript = newScript(compareAndDeleteLua)
	incrementScript        = newScript(incrementLua)
	compareAndSwapScript   = newScript(compareAndSwapLua)
	extendScript           = newScript(extendLua)
	createFencedScript     = newScript(createFencedLua)
)

// New returns a Redis driver. It does not connect: the first command does, so New
// succeeds while Redis is down.
func New(o Options) (*Driver, error) {
	switch {
	case o.Client == nil && o.URL == "":
		return nil, errors.New("rediscache: set Options.Client or Options.URL")
	case o.Client != nil && o.URL != "":
		return nil, errors.New("rediscache: set only one of Options.Client and Options.URL")
	case o.DefaultTTL < 0:
		return nil, fmt.Errorf("rediscache: DefaultTTL %v is negative", o.DefaultTTL)
	}
	d := &Driver{c: o.Client, ownsDB: o.OwnsDatabase, defaultTTL: o.DefaultTTL, codec: o.Codec}
	if d.codec == nil {
		d.codec = driver.JSON
	}
	if o.URL != "" {
		c, err := clientFromURL(o.URL)
		if err != nil {
			return nil, err
		}
		d.c, d.owns = c, true
	}
	if err := replicaOptions(&o, d.c); err != nil {
		if d.owns {
			_ = d.c.Close()
		}
		return nil, err
	}
	d.replicas, d.replTimeout = o.LockReplicas, o.LockReplicasTimeout
	switch d.c.(type) {
	case *redis.Client:
		d.topo = topoSingle
	case *redis.ClusterClient:
		d.topo = topoCluster
	default:
		d.topo = topoSharded
	}
	d.lockc, d.ownsLockc = lockClient(d.c)
	d.exec, d.release = d.c, d.lockc
	if !o.NoBatch {
		if p := newAutoPipe(d.c); p != nil {
			// A release alone runs on the fail-fast lock client, as with NoBatch; under
			// concurrency it joins the pipelines of the acquisitions, so that the callers a
			// pipeline of SET NX wakes find their releases batched with the same flusher.
			d.exec, d.release = batched{p, d.c}, batched{p, d.lockc}
		}
	}
	d.installBreaker(o.Breaker)
	d.execOnce, d.releaseOnce, d.lockOnce = once{d.exec}, once{d.release}, once{d.lockc}
	if o.Near != nil {
		n, err := startNear(d, *o.Near)
		if err != nil {
			_ = d.Close()
			return nil, err
		}
		d.near = n
	}
	return d, nil
}

// Client returns the go-redis client the driver uses.
func (d *Driver) Client() redis.UniversalClient { return d.c }

// Codec returns the codec the manager encodes values with.
func (d *Driver) Codec() driver.Codec { return d.codec }

// DefaultTTL returns Options.DefaultTTL.
func (d *Driver) DefaultTTL() time.Duration { return d.defaultTTL }

// Close stops Watch's subscriber connection and the lock client (see Extend), and
// closes the client if the driver built it from Options.URL (never one given as
// Options.Client). Afterwards every method
// returns an error matching driver.ErrClosed.
func (d *Driver) Close() error {
	if d.closed.Swap(true) {
		return nil
	}
	var errs []error
	d.brk.stop()
	if err := d.near.stop(); err != nil {
		errs = append(errs, err)
	}
	if err := d.hub.stop(); err != nil && !errors.Is(err, redis.ErrClosed) {
		errs = append(errs, err)
	}
	if d.ownsLockc {
		if err := d.lockc.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	if d.owns {
		if err := d.c.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("rediscache: close: %w", err)
	}
	return nil
}

// check is the start of every operation: a closed driver or a done context fails before
// a command is sent.
func (d *Driver) check(ctx context.Context) error {
	if d.closed.Load() {
		return driver.ErrClosed
	}
	return ctx.Err()
}

// fail wraps err with the operation and the key. A go-redis "client is closed" also
// matches driver.ErrClosed (the user closed the client under us, or Close raced), and a
// WRONGTYPE reply [ErrWrongType].
func fail(op, key string, err error) error {
	err = wrongType(err)
	if errors.Is(err, redis.ErrClosed) && !errors.Is(err, driver.ErrClosed) {
		err = fmt.Errorf("%w: %w", driver.ErrClosed, err)
	}
	if key == "" {
		return fmt.Errorf("rediscache: %s: %w", op, err)
	}
	return fmt.Errorf("rediscache: %s %q: %w", op, key, err)
}

// valueBytes is the []byte the manager hands an Encoder driver.
func valueBytes(v any) ([]byte, error) {
	switch b := v.(type) {
	case []byte:
		return b, nil
	case nil:
		return nil, errors.New("value is nil, want the codec's []byte")
	}
	return nil, fmt.Errorf("value is %T, want the codec's []byte (the manager encodes values with Codec())", v)
}

// pxMillis is ttl in whole milliseconds, rounded up: Redis has no finer unit, and
// rounding down would make a lock expire early (or a 500µs TTL mean "no expiry").
func pxMillis(ttl time.Duration) int64 {
	if ttl > math.MaxInt64-time.Millisecond {
		return math.MaxInt64 / int64(time.Millisecond)
	}
	return int64((ttl + time.Millisecond - 1) / time.Millisecond)
}

// setCmd is SET key v [PX ms] [NX|XX].
func setCmd(ctx context.Context, key string, v []byte, ttl time.Duration, cond string) *redis.StatusCmd {
	args := make([]any, 3, 6)
	args[0], args[1], args[2] = "set", key, v
	if ttl > 0 {
		args = append(args, "px", pxMillis(ttl))
	}
	switch cond { // constant strings box into an any without allocating
	case "nx":
		args = append(args, "nx")
	case "xx":
		args = append(args, "xx")
	case "":
	default:
		args = append(args, cond)
	}
	return redis.NewStatusCmd(ctx, args...)
}

// Get returns the bytes stored under key.
func (d *Driver) Get(ctx context.Context, key string) (any, bool, error) {
	if err := d.check(ctx); err != nil {
		return nil, false, fail("get", key, err)
	}
	if d.near != nil && d.near.tracked(key) {
		return d.getTracked(ctx, key)
	}
	cmd := redis.NewStringCmd(ctx, "get", key)
	if err := d.exec.Process(ctx, cmd); err != nil {
		if err == redis.Nil {
			return nil, false, nil
		}
		return nil, false, fail("get", key, err)
	}
	b, _ := cmd.Bytes()
	return b, true, nil
}

// Set stores e with SET PX (no PX for a TTL of 0).
func (d *Driver) Set(ctx context.Context, e driver.Entry) error {
	if err := d.check(ctx); err != nil {
		return fail("set", e.Key, err)
	}
	defer d.near.evict(e.Key)
	b, err := valueBytes(e.Value)
	if err != nil {
		return fail("set", e.Key, err)
	}
	if err := d.execOnce.Process(ctx, setCmd(ctx, e.Key, b, e.TTL, "")); err != nil {
		return fail("set", e.Key, err)
	}
	return nil
}

// SetIf writes e with SET NX PX (IfAbsent) or SET XX PX (IfPresent). With
// Options.LockReplicas, an IfAbsent write is followed by WAIT on the same connection and
// counts only when enough replicas acknowledged it: otherwise SetIf removes it and
// returns an error matching [ErrNotReplicated].
func (d *Driver) SetIf(ctx context.Context, e driver.Entry, cond driver.Condition) (bool, error) {
	var op, flag string
	switch cond {
	case driver.IfAbsent:
		op, flag = "create", "nx"
	case driver.IfPresent:
		op, flag = "update", "xx"
	default:
		return false, fail("set", e.Key, fmt.Errorf("unknown condition %v", cond))
	}
	if err := d.check(ctx); err != nil {
		return false, fail(op, e.Key, err)
	}
	defer d.near.evict(e.Key)
	b, err := valueBytes(e.Value)
	if err != nil {
		return false, fail(op, e.Key, err)
	}
	if d.replicas > 0 && cond == driver.IfAbsent {
		return d.createReplicated(ctx, e, b)
	}
	if err := d.execOnce.Process(ctx, setCmd(ctx, e.Key, b, e.TTL, flag)); err != nil {
		if err == redis.Nil { // the condition did not hold
			return false, nil
		}
		return false, fail(op, e.Key, err)
	}
	return true, nil
}

// createReplicated is SetIf IfAbsent with Options.LockReplicas: SET NX PX and WAIT.
func (d *Driver) createReplicated(ctx context.Context, e driver.Entry, b []byte) (bool, error) {
	set := setCmd(ctx, e.Key, b, e.TTL, "nx")
	wait := d.withWait(ctx, d.c, e.Key, set)
	if err := set.Err(); err != nil {
		if err == redis.Nil {
			return false, nil
		}
		// The SET may have been written with its answer lost (a deadline, a dropped
		// connection): take it back, as the caller will not count it.
		d.undo(ctx, e.Key, b)
		return false, fail("create", e.Key, err)
	}
	if err := d.checkReplicated(wait); err != nil {
		d.undo(ctx, e.Key, b)
		return false, fail("create", e.Key, err)
	}
	return true, nil
}

// CompareAndDelete deletes key if it still holds old, with one Lua script (a lock's
// release). It runs on the lock client (see Extend): against a stopped Redis it fails
// in about a millisecond.
func (d *Driver) CompareAndDelete(ctx context.Context, key string, old any) (bool, error) {
	if err := d.check(ctx); err != nil {
		return false, fail("compare-and-delete", key, err)
	}
	defer d.near.evict(key)
	b, err := valueBytes(old)
	if err != nil {
		return false, fail("compare-and-delete", key, err)
	}
	cmd := compareAndDeleteScript.run(ctx, d.releaseOnce, []string{key}, b)
	if err := cmd.Err(); err != nil {
		return false, fail("compare-and-delete", key, err)
	}
	n, err := cmd.Int64()
	if err != nil {
		return false, fail("compare-and-delete", key, err)
	}
	return n == 1, nil
}

// Increment adds delta to the counter under key. A new counter gets ttlIfNew in the same
// atomic step; an existing one keeps its TTL.
func (d *Driver) Increment(ctx context.Context, key string, delta int64, ttlIfNew time.Duration) (int64, error) {
	if err := d.check(ctx); err != nil {
		return 0, fail("increment", key, err)
	}
	defer d.near.evict(key)
	if ttlIfNew <= 0 {
		var cmd *redis.IntCmd
		if delta < 0 && delta != math.MinInt64 {
			cmd = redis.NewIntCmd(ctx, "decrby", key, -delta)
		} else {
			cmd = redis.NewIntCmd(ctx, "incrby", key, delta)
		}
		if err := d.execOnce.Process(ctx, cmd); err != nil {
			return 0, fail("increment", key, incrError(err))
		}
		return cmd.Val(), nil
	}
	cmd := incrementScript.run(ctx, d.execOnce, []string{key}, delta, pxMillis(ttlIfNew))
	s, err := cmd.Text()
	if err != nil {
		return 0, fail("increment", key, incrError(err))
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fail("increment", key, fmt.Errorf("%w: Redis returned %q", driver.ErrNotInteger, s))
	}
	return n, nil
}

// incrError makes Redis's "not an integer", "would overflow" and WRONGTYPE replies match
// driver.ErrNotInteger.
func incrError(err error) error {
	var re redis.Error
	if !errors.As(err, &re) {
		return err
	}
	msg := err.Error()
	if strings.Contains(msg, "not an integer") || strings.Contains(msg, "overflow") || strings.Contains(msg, "WRONGTYPE") {
		return fmt.Errorf("%w: %w", driver.ErrNotInteger, err)
	}
	return err
}

// Pull gets and deletes key with GETDEL.
func (d *Driver) Pull(ctx context.Context, key string) (any, bool, error) {
	if err := d.check(ctx); err != nil {
		return nil, false, fail("pull", key, err)
	}
	defer d.near.evict(key)
	cmd := redis.NewStringCmd(ctx, "getdel", key)
	if err := d.execOnce.Process(ctx, cmd); err != nil {
		if err == redis.Nil {
			return nil, false, nil
		}
		return nil, false, fail("pull", key, err)
	}
	b, _ := cmd.Bytes()
	return b, true, nil
}

// script is a Lua script run with EVALSHA, falling back to EVAL (which also loads it)
// the first time a node does not have it: after that, only the SHA goes on the wire.
type script struct {
	src string
	sha any // the SHA1 as a string, boxed once rather than on every call
}

func newScript(src string) *script {
	return &script{src: src, sha: redis.NewScript(src).Hash()}
}

// run runs the script on p. The command is built here rather than with redis.Script.Run
// to send it with a single argument slice. When p fails without the command's own
// answer (the context ended while an autopipelined command was in flight), the command
// returned is a new one holding that error, never the one still in flight.
func (s *script) run(ctx context.Context, p processor, keys []string, args ...any) *redis.Cmd {
	a := make([]any, 0, 3+len(keys)+len(args))
	a = append(a, "evalsha", s.sha, len(keys))
	for _, k := range keys {
		a = append(a, k)
	}
	a = append(a, args...)
	cmd := redis.NewCmd(ctx, a...)
	cmd.SetFirstKeyPos(3)
	err := p.Process(ctx, cmd)
	if err == nil || !redis.HasErrorPrefix(err, "NOSCRIPT") {
		return settled(ctx, cmd, err)
	}
	a[0], a[1] = "eval", s.src
	cmd = redis.NewCmd(ctx, a...)
	cmd.SetFirstKeyPos(3)
	return settled(ctx, cmd, p.Process(ctx, cmd))
}

// settled is cmd when err (what Process returned) is cmd's own answer, and otherwise a
// new command holding err.
func settled(ctx context.Context, cmd *redis.Cmd, err error) *redis.Cmd {
	if err == nil {
		return cmd
	}
	var re redis.Error // a reply of Redis's, redis.Nil included
	if errors.As(err, &re) {
		return cmd
	}
	failed := redis.NewCmd(ctx)
	failed.SetErr(err)
	return failed
}

// clientFromURL builds a client from one of the URL forms of the package doc. Its errors
// never contain the password.
func clientFromURL(raw string) (redis.UniversalClient, error) {
	u, err := url.Parse(raw)
	if err != nil {
		hosts, ok := splitHosts(raw)
		if !ok {
			// url.Error repeats the URL and its pieces: say what is wrong, not what was given.
			return nil, errors.New("rediscache: Options.URL is not a valid URL; want redis://[user:password@]host:port[/db] (the URL is not shown: it may hold a password)")
		}
		return clusterFromHosts(raw, hosts)
	}
	switch u.Scheme {
	case "redis+cluster", "rediss+cluster":
		u.Scheme = strings.TrimSuffix(u.Scheme, "+cluster")
		return clusterClient(u, raw)
	case "redis", "rediss":
		if u.Query().Has("addr") {
			return clusterClient(u, raw)
		}
		if strings.Contains(u.Host, ",") {
			hosts, _ := splitHosts(raw)
			return clusterFromHosts(raw, hosts)
		}
	}
	if u.Scheme != "unix" {
		if err := checkAddrs(u); err != nil {
			return nil, urlError(u, raw, err)
		}
	}
	o, err := redis.ParseURL(u.String())
	if err != nil {
		return nil, urlError(u, raw, err)
	}
	o.ContextTimeoutEnabled = true
	return redis.NewClient(o), nil
}

// splitHosts finds a comma-separated host list in a URL that url.Parse may reject (Go
// reads "h1:1,h2:2" as a host with a bad port). It returns the hosts, with the URL
// rebuilt around the first one as the first element.
func splitHosts(raw string) ([]string, bool) {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return nil, false
	}
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	auth, tail := rest[:end], rest[end:]
	user := ""
	if at := strings.LastIndex(auth, "@"); at >= 0 {
		user, auth = auth[:at+1], auth[at+1:]
	}
	if !strings.Contains(auth, ",") {
		return nil, false
	}
	hosts := strings.Split(auth, ",")
	return append([]string{scheme + "://" + user + hosts[0] + tail}, hosts[1:]...), true
}

// clusterFromHosts is a Cluster from "redis://h1:p1,h2:p2/...": the first host is the
// URL's, the others become addr parameters.
func clusterFromHosts(raw string, hosts []string) (redis.UniversalClient, error) {
	u, err := url.Parse(hosts[0])
	if err != nil {
		return nil, errors.New("rediscache: Options.URL is not a valid URL; want redis://[user:password@]host1:port1,host2:port2 for a Cluster (the URL is not shown: it may hold a password)")
	}
	q := u.Query()
	for _, h := range hosts[1:] {
		if h == "" {
			return nil, urlError(u, raw, errors.New("empty address in the host list"))
		}
		q.Add("addr", h)
	}
	u.RawQuery = q.Encode()
	return clusterClient(u, raw)
}

// clusterClient builds a ClusterClient from a redis:// or rediss:// URL.
func clusterClient(u *url.URL, raw string) (redis.UniversalClient, error) {
	if p := strings.Trim(u.Path, "/"); p != "" && p != "0" {
		return nil, urlError(u, raw, fmt.Errorf("a Cluster has only database 0, got path %q", u.Path))
	}
	u.Path = ""
	if err := checkAddrs(u); err != nil {
		return nil, urlError(u, raw, err)
	}
	o, err := redis.ParseClusterURL(u.String())
	if err != nil {
		return nil, urlError(u, raw, err)
	}
	o.ContextTimeoutEnabled = true
	return redis.NewClusterClient(o), nil
}

// urlError reports a bad URL with its password, and the values of query parameters that
// look like secrets, replaced by "xxxxx"; go-redis's message is scrubbed the same way.
func urlError(u *url.URL, raw string, err error) error {
	msg := err.Error()
	for _, s := range secrets(u, raw) {
		msg = strings.ReplaceAll(msg, s, "xxxxx")
	}
	shown := redacted(u)
	if scheme, _, ok := strings.Cut(raw, "://"); ok && scheme != u.Scheme && !strings.ContainsAny(scheme, "@/") {
		shown = scheme + strings.TrimPrefix(shown, u.Scheme) // redis+cluster, rewritten for go-redis
	}
	return fmt.Errorf("rediscache: invalid Options.URL %s: %s", shown, msg)
}

func secrets(u *url.URL, raw string) []string {
	var s []string
	if p, ok := u.User.Password(); ok && p != "" {
		s = append(s, p, url.UserPassword("", p).String()[1:])
	}
	// The password as written, which may be escaped differently.
	if _, rest, ok := strings.Cut(raw, "://"); ok {
		if at := strings.LastIndex(rest, "@"); at >= 0 {
			if _, p, ok := strings.Cut(rest[:at], ":"); ok && p != "" {
				s = append(s, p)
			}
		}
	}
	for k, vs := range u.Query() {
		if secretParam(k) {
			for _, v := range vs {
				if v != "" {
					s = append(s, v)
				}
			}
		}
	}
	return s
}

func secretParam(k string) bool {
	k = strings.ToLower(k)
	return strings.Contains(k, "pass") || strings.Contains(k, "secret") || strings.Contains(k, "token")
}

// redacted is u for an error message: the password as "xxxxx", and the query's values
// left out (any of them may be a secret), its names kept.
func redacted(u *url.URL) string {
	c := *u
	if c.RawQuery != "" {
		q := c.Query()
		names := make([]string, 0, len(q))
		for k := range q {
			names = append(names, k+"=...")
		}
		slices.Sort(names)
		c.RawQuery = strings.Join(names, "&")
	}
	return c.Redacted()
}

// checkAddrs rejects a host:port whose port is not a TCP port, which go-redis would only
// report at the first command.
func checkAddrs(u *url.URL) error {
	addrs := []string{u.Host}
	addrs = append(addrs, u.Query()["addr"]...)
	for _, a := range addrs {
		_, port, err := net.SplitHostPort(a)
		if err != nil {
			continue // no port: go-redis uses 6379
		}
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("port %q is not a TCP port", port)
		}
	}
	return nil
}
