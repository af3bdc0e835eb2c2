package rediscache

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/maypok86/otter/v2"
	"github.com/redis/go-redis/v9"

	"github.com/cachekit/cache/driver"
)

// The near cache (Options.Near): decoded copies of the values the manager reads, kept in
// process, and dropped when Redis reports that their key changed (server-assisted
// client-side caching). See docs/near-cache.md for what it guarantees and costs.
//
// How it works:
//
//   - One tracking connection per Redis master (one for a single node or a Sentinel
//     master, one per master of a Cluster), in RESP2: when it connects it runs CLIENT ID
//     and CLIENT TRACKING on REDIRECT <its own id> BCAST [PREFIX p ...], then SUBSCRIBE
//     __redis__:invalidate. From then on Redis sends it the names of the keys that any
//     client writes (under the prefixes), and of the keys that expire or are evicted; a
//     FLUSHALL or FLUSHDB arrives as a message without keys.
//   - A read that misses takes a ticket (NearReserve); the copy it brings back is kept
//     (NearFill) only if no invalidation of its key, and no reset, came in since: so a
//     GET reply that raced with a write is never kept.
//   - Freshness: every MaxStaleness/4 the tracking connection sends PING with a sequence
//     number. Redis is single-threaded and puts a write's invalidation on the tracking
//     connection before it answers the write, so the PONG of a PING sent at time s
//     proves that every write acknowledged before s has had its invalidation read and
//     applied (they are read in order). The same round proves, on the data client, that
//     the tracking connection is on the master the driver uses (see near_probe.go): a
//     round counts only with both. NearGet answers only while the send time of the
//     last counted round is at most MaxStaleness old; otherwise every read goes to Redis.
//   - Every copy stops being served MaxAge after the read that filled it was sent: the
//     bound for what Redis never reports (SWAPDB, a module's silent write).
//   - Expiry: a key that expires in Redis is deleted (and its invalidation sent) only
//     when Redis gets to it, lazily on an access or by its sampling expiry cycle, which
//     can be long after the TTL when many keys live. So a read that fills the near tier
//     asks PTTL in the same round trip as GET, and the copy is kept only until the
//     key's TTL ends, counted from the request's send time (an early end, never a late
//     one).
//   - A new or lost tracking connection, or a change of the Cluster's masters, empties
//     the near tier and voids every ticket.

// NearOptions configure the near cache (Options.Near). The zero value is the defaults.
//
// Values kept in the near tier are shared by every reader, as with the memory driver: a
// caller must not modify a map, slice or pointer it got from Get or GetAs.
//
// The driver's client must read from the master: New refuses Near, with an error
// matching ErrNearReplicaReads, over a client that reads from replicas.
type NearOptions struct {
	// MaxEntries bounds the number of values kept; beyond it, the ones least likely to
	// be read again are dropped. Default: 10 000.
	MaxEntries int
	// MaxStaleness bounds how long after a write by another client a read may still
	// return the value that the write replaced: a read returns a kept value only while
	// the tracking connection has proved, within MaxStaleness, that it is receiving
	// invalidations; otherwise it reads Redis. The tracking connection is pinged every
	// MaxStaleness/4. Default: 100 ms; at least 1 ms.
	MaxStaleness time.Duration
	// MaxAge bounds how long a copy is served after it was read from Redis, whatever
	// Redis reported or failed to report: it bounds the changes that Redis never sends
	// an invalidation for (SWAPDB, a module that writes without keyspace notification,
	// a bug). Once it passes, the next read goes to Redis and fills the copy again.
	// Default: 5 s; at least 1 ms.
	MaxAge time.Duration
	// Prefixes limits the near cache to the keys that start with one of them (final keys,
	// as stored in Redis: a cache's prefix and its "." included, e.g. "app."): only
	// those are kept, and Redis sends invalidations only for those. They must not
	// overlap (neither may start with another: Redis refuses that). Default: every key.
	Prefixes []string
}

var _ driver.Near = (*Driver)(nil)

// Defaults of NearOptions.
const (
	DefaultNearMaxEntries   = 10_000
	DefaultNearMaxStaleness = 100 * time.Millisecond
	DefaultNearMaxAge       = 5 * time.Second
)

const (
	invalidateChannel = "__redis__:invalidate"
	nearStripes       = 1024 // ticket stripes
	nearPings         = 64   // pings remembered per tracking connection
	// mastersEvery is how often a Cluster's master set is read again.
	mastersEvery = time.Second
	// connectWait bounds New's first tracking connection: enough to see whether Redis
	// accepts CLIENT TRACKING; a Redis that cannot be reached is not an error there.
	connectWait = 2 * time.Second
)

// near is the near cache's state. nil: off.
type near struct {
	maxStale  int64         // ns
	maxAge    int64         // ns
	interval  time.Duration // between pings
	deadAfter time.Duration // a tracking connection silent this long is replaced
	prefixes  []string
	local     *otter.Cache[string, *nearItem]
	seed      maphash.Seed

	// seq hands out tickets and stamps invalidations: an invalidation of a key (or a
	// reset) after a ticket was taken has a higher number.
	seq      atomic.Uint64
	resetSeq uint64 // written holding every stripe's lock; read holding one
	stripes  [nearStripes]stripe

	// confirmed is the oldest, over the tracking connections, of the send time (mono) of
	// the last ping answered on the current connection; 0 while any has none.
	confirmed atomic.Int64

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // the Cluster's master watcher

	mu       sync.Mutex // guards trackers, the stores of confirmed, and served
	trackers []*tracker
	cluster  *redis.ClusterClient // nil: one tracker
	data     *redis.Client        // the driver's client, when not a Cluster
	stopped  bool
	served   bool // confirmed has been set since the start

	// The changes of serving for OnNear (see setConfirmed and report): queued counts the
	// changes so far, reported those handed to onNear. The changes alternate, dropped
	// first, so the count alone says which one is next. reporting is set while a
	// goroutine hands them over, outside every lock but this small one.
	emu       sync.Mutex
	onNear    []func(serving bool)
	queued    uint64
	reported  uint64
	reporting bool
}

type stripe struct {
	mu    sync.Mutex
	inval uint64 // seq of the last invalidation of a key of the stripe
	// done and donePrev are the seqs of the last two reads from Redis of keys of the
	// stripe (see observed).
	done, donePrev uint64
	// ends holds, for the keys of the stripe read from Redis and not filled yet, when
	// their copy stops being served (mono, see nearItem): Get records it, NearFill
	// takes it.
	ends map[string]int64
}

// nearItem is a copy in the near tier: the decoded value, and when it stops being
// served (mono): the earlier of the end of the key's TTL and MaxAge after the read that
// filled it was sent.
type nearItem struct {
	v   any
	end int64
}

// maxPendingEnds bounds a stripe's ends: a read whose value is never filled (it did not
// decode) leaves its entry until the key's next fill; past the bound, a read records
// nothing and its fill is skipped.
const maxPendingEnds = 64

// getTracked is Get for a key the near tier may keep: GET and PTTL in one round trip,
// recording when the key's TTL ends for NearFill.
func (d *Driver) getTracked(ctx context.Context, key string) (any, bool, error) {
	get := redis.NewStringCmd(ctx, "get", key)
	pttl := redis.NewIntCmd(ctx, "pttl", key)
	sent := mono()
	if err := d.process(ctx, []redis.Cmder{get, pttl}); err != nil {
		if err == redis.Nil && get.Err() == redis.Nil {
			d.near.observedKeys([]string{key})
			return nil, false, nil
		}
		if err = get.Err(); err == nil {
			err = pttl.Err()
		}
		return nil, false, fail("get", key, err)
	}
	b, _ := get.Bytes()
	end := sent + d.near.maxAge
	if ms := pttl.Val(); ms >= 0 {
		end = min(end, sent+ms*int64(time.Millisecond))
	}
	s := d.near.stripe(key)
	s.mu.Lock()
	d.near.observed(s, key)
	if old, ok := s.ends[key]; ok {
		s.ends[key] = min(old, end) // two reads in flight: the earlier end is safe for both
	} else if len(s.ends) < maxPendingEnds {
		if s.ends == nil {
			s.ends = make(map[string]int64)
		}
		s.ends[key] = end
	}
	s.mu.Unlock()
	return b, true, nil
}

// observed records, holding s's lock, that a read of key (of stripe s) from Redis has
// returned, a value or a miss. This process may now have seen a value newer than its
// copy, or than what a read still in flight will bring back: the copy goes, and
// NearFill refuses a value whose ticket is older than another read's return (the
// second-last one; the last may be its own). So no copy older than what this process
// has already read is served: its reads are monotonic.
func (n *near) observed(s *stripe, key string) {
	s.donePrev, s.done = s.done, n.seq.Add(1)
	n.local.Invalidate(key)
}

// observedKeys is observed for each of keys that the near tier may keep: a read from
// Redis that did not go through getTracked (GetMany, or a miss). nil does nothing.
func (n *near) observedKeys(keys []string) {
	if n == nil {
		return
	}
	for _, k := range keys {
		if n.tracked(k) {
			s := n.stripe(k)
			s.mu.Lock()
			n.observed(s, k)
			s.mu.Unlock()
		}
	}
}

// start is the origin of mono.
var start = time.Now()

// mono is a monotonic clock in nanoseconds, as cheap as runtime.nanotime.
func mono() int64 { return int64(time.Since(start)) }

// errTrackingRefused marks a Redis that refused CLIENT TRACKING.
var errTrackingRefused = errors.New("Redis refused CLIENT TRACKING (Options.Near needs Redis 6 or later with client-side caching; miniredis and some proxies lack it)")

// startNear starts the near cache of d: the tracking connections, and their pingers.
func startNear(d *Driver, o NearOptions) (*near, error) {
	o, err := nearDefaults(o)
	if err != nil {
		return nil, err
	}
	if err := checkNearClient(d.c); err != nil {
		return nil, err
	}
	local, err := otter.New(&otter.Options[string, *nearItem]{MaximumSize: o.MaxEntries})
	if err != nil {
		return nil, fmt.Errorf("rediscache: near cache: %w", err)
	}
	n := &near{
		maxStale:  int64(o.MaxStaleness),
		maxAge:    int64(o.MaxAge),
		interval:  o.MaxStaleness / 4,
		deadAfter: max(2*time.Second, 10*o.MaxStaleness),
		prefixes:  slices.Clone(o.Prefixes),
		local:     local,
		seed:      maphash.MakeSeed(),
	}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	if err := n.track(d.c); err != nil {
		_ = n.stop()
		return nil, err
	}
	return n, nil
}

// nearDefaults fills in o's defaults and checks it.
func nearDefaults(o NearOptions) (NearOptions, error) {
	if o.MaxEntries == 0 {
		o.MaxEntries = DefaultNearMaxEntries
	}
	if o.MaxStaleness == 0 {
		o.MaxStaleness = DefaultNearMaxStaleness
	}
	if o.MaxAge == 0 {
		o.MaxAge = DefaultNearMaxAge
	}
	switch {
	case o.MaxEntries < 0:
		return o, fmt.Errorf("rediscache: NearOptions.MaxEntries %d is negative", o.MaxEntries)
	case o.MaxStaleness < time.Millisecond:
		return o, fmt.Errorf("rediscache: NearOptions.MaxStaleness %v is under 1ms", o.MaxStaleness)
	case o.MaxAge < time.Millisecond:
		return o, fmt.Errorf("rediscache: NearOptions.MaxAge %v is under 1ms", o.MaxAge)
	}
	return o, checkPrefixes(o.Prefixes)
}

// checkNearClient refuses a client the near cache cannot track, or one that reads
// from replicas (as far as its options tell: see checkProbe for the rest).
func checkNearClient(c redis.UniversalClient) error {
	switch c := c.(type) {
	case *redis.Client:
		return nil
	case *redis.ClusterClient:
		return checkClusterReads(c.Options())
	}
	return fmt.Errorf("rediscache: Options.Near needs a single node or Sentinel client (*redis.Client) or a Cluster client (*redis.ClusterClient), not %T", c)
}

// track starts the tracking connections of c, a client checkNearClient accepted.
func (n *near) track(c redis.UniversalClient) error {
	if cl, ok := c.(*redis.ClusterClient); ok {
		n.cluster = cl
		if err := n.refreshMasters(true); err != nil {
			return err
		}
		n.wg.Add(1)
		go n.watchMasters()
		return checkProbe(n.ctx, cl, false)
	}
	n.data = c.(*redis.Client)
	t := n.newTracker(n.data.Options())
	n.trackers = []*tracker{t}
	return errors.Join(t.start(true), checkProbe(n.ctx, n.data, true))
}

// checkPrefixes refuses what Redis's CLIENT TRACKING BCAST PREFIX refuses.
func checkPrefixes(ps []string) error {
	for i, p := range ps {
		if p == "" {
			return errors.New("rediscache: NearOptions.Prefixes has an empty prefix (leave Prefixes empty for every key)")
		}
		for _, q := range ps[i+1:] {
			if strings.HasPrefix(p, q) || strings.HasPrefix(q, p) {
				return fmt.Errorf("rediscache: NearOptions.Prefixes %q and %q overlap (Redis refuses overlapping tracking prefixes)", p, q)
			}
		}
	}
	return nil
}

// stop stops the near cache; nil does nothing.
func (n *near) stop() error {
	if n == nil {
		return nil
	}
	n.cancel()
	n.wg.Wait()
	n.mu.Lock()
	ts := n.trackers
	n.trackers, n.stopped = nil, true
	n.setConfirmed(0) // stopped: not a change that OnNear reports
	n.mu.Unlock()
	var errs []error
	for _, t := range ts {
		if err := t.stop(); err != nil {
			errs = append(errs, err)
		}
	}
	n.reset()
	n.local.StopAllGoroutines()
	return errors.Join(errs...)
}

// fresh reports whether the tracking connections have proved, within MaxStaleness, that
// every invalidation of a write acknowledged before then has been applied.
func (n *near) fresh() bool {
	c := n.confirmed.Load()
	return c != 0 && mono()-c <= n.maxStale
}

// tracked reports whether key is under the prefixes.
func (n *near) tracked(key string) bool {
	if len(n.prefixes) == 0 {
		return true
	}
	for _, p := range n.prefixes {
		if strings.HasPrefix(key, p) {
			return true
		}
	}
	return false
}

func (n *near) stripe(key string) *stripe {
	return &n.stripes[maphash.String(n.seed, key)%nearStripes]
}

// invalidate drops key's copy and voids the tickets taken for it so far.
func (n *near) invalidate(key string) {
	s := n.stripe(key)
	s.mu.Lock()
	s.inval = n.seq.Add(1)
	n.local.Invalidate(key)
	delete(s.ends, key)
	s.mu.Unlock()
}

// reset drops every copy and voids every ticket taken so far.
func (n *near) reset() {
	for i := range n.stripes {
		n.stripes[i].mu.Lock()
	}
	n.resetSeq = n.seq.Add(1)
	n.local.InvalidateAll()
	for i := range n.stripes {
		clear(n.stripes[i].ends)
	}
	for i := range n.stripes {
		n.stripes[i].mu.Unlock()
	}
}

// evict drops key's copy: a write of the driver's own, after it returned, so that this
// process reads its own writes without waiting for Redis's invalidation. nil does
// nothing.
func (n *near) evict(key string) {
	if n != nil {
		n.invalidate(key)
	}
}

// evictKeys is evict for each of keys.
func (n *near) evictKeys(keys []string) {
	if n != nil {
		for _, k := range keys {
			n.invalidate(k)
		}
	}
}

// evictEntries is evict for the key of each of es.
func (n *near) evictEntries(es []driver.Entry) {
	if n != nil {
		for _, e := range es {
			n.invalidate(e.Key)
		}
	}
}

// evictAll drops every copy (a Flush, a DeleteNamespace). nil does nothing.
func (n *near) evictAll() {
	if n != nil {
		n.reset()
	}
}

// recompute sets confirmed to the oldest of the trackers', and reports a change of
// serving to OnNear's functions.
func (n *near) recompute() {
	n.mu.Lock()
	oldest := int64(0)
	if !n.stopped {
		for i, t := range n.trackers {
			c := t.confirmed.Load()
			if c == 0 {
				oldest = 0
				break
			}
			if i == 0 || c < oldest {
				oldest = c
			}
		}
	}
	changed := n.setConfirmed(oldest)
	n.mu.Unlock()
	if changed {
		n.report()
	}
}

// setConfirmed stores confirmed, holding mu: every store goes through here, so that
// whether the tier serves (confirmed is not 0) changes only here. It reports whether
// that changed in a way that OnNear reports (queued for report, which the caller calls
// once it has released mu): a drop, or a restore after a drop. The first confirmation
// since the start is not a change, and neither is the drop of stop.
func (n *near) setConfirmed(c int64) bool {
	serving := c != 0
	if was := n.confirmed.Swap(c) != 0; serving == was {
		return false
	}
	if n.stopped || (serving && !n.served) {
		n.served = true
		return false
	}
	n.emu.Lock()
	n.queued++
	n.emu.Unlock()
	return true
}

// report hands the changes queued by setConfirmed to OnNear's functions, in order, one
// at a time, without holding a lock while they run: the goroutine that finds nobody
// reporting reports every change queued until none is left, and the others return at
// once (their change is queued, and will be reported by it). Changes are queued in the
// order of the stores of confirmed (under mu), so the functions see them in that order,
// alternating: dropped (false), restored (true), dropped, ...
func (n *near) report() {
	n.emu.Lock()
	if n.reporting {
		n.emu.Unlock()
		return
	}
	n.reporting = true
	for n.reported < n.queued {
		serving := n.reported%2 == 1 // the first change is a drop
		n.reported++
		fns := n.onNear
		n.emu.Unlock()
		for _, fn := range fns {
			fn(serving)
		}
		n.emu.Lock()
	}
	n.reporting = false
	n.emu.Unlock()
}

// OnNear adds fn to the functions called when the near tier stops serving copies
// (serving false: the tracking lost what proved them current, because its connection
// was lost, a check of the node it tracks failed, or a Cluster's masters changed) and
// when it serves them again after such a drop (serving true). The first time it serves
// after New is not reported, nor is Close. The calls alternate, never run concurrently
// and come in the order of the changes, from the driver's goroutines and outside its
// locks: fn must be quick and must not call the driver. The manager (package cache)
// registers one, which reports the changes as "near.dropped" and "near.restored"
// events. Without Options.Near fn is never called.
//
// A drop is reported when the tracking loses its proof, not when the proof grows old:
// a server that stops answering without closing the connection is reported once the
// tracking connection is given up (after ten times MaxStaleness, at least 2 s), while
// reads stop using the copies after MaxStaleness.
func (d *Driver) OnNear(fn func(serving bool)) {
	if n := d.near; n != nil {
		n.emu.Lock()
		n.onNear = append(n.onNear, fn)
		n.emu.Unlock()
	}
}

// watchMasters follows a Cluster's master set.
func (n *near) watchMasters() {
	defer n.wg.Done()
	tk := time.NewTicker(mastersEvery)
	defer tk.Stop()
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-tk.C:
		}
		_ = n.refreshMasters(false)
	}
}

// refreshMasters reads a Cluster's masters and tracks each: a master that is new gets a
// tracker, one that is gone loses its tracker, and any change empties the near tier.
// With first (New), a master that refuses CLIENT TRACKING is an error; one that cannot
// be reached is not.
func (n *near) refreshMasters(first bool) error {
	ctx, cancel := context.WithTimeout(n.ctx, connectWait)
	defer cancel()
	masters, err := n.masters(ctx)
	if err != nil {
		return nil // keep what is tracked; freshness says whether it is enough
	}
	added, gone, changed := n.swapTrackers(masters)
	if changed {
		n.report()
	}
	if len(added) == 0 && len(gone) == 0 {
		return nil
	}
	n.reset()
	for _, t := range gone {
		_ = t.stop()
	}
	var errs []error
	for _, t := range added {
		t.node, t.probeKey = masters[t.addr], findProbeKey(ctx, n.cluster, t.addr)
		if err := t.start(first); err != nil {
			errs = append(errs, err)
		}
	}
	n.recompute()
	return errors.Join(errs...)
}

// masters returns the clients of a Cluster's masters, by address.
func (n *near) masters(ctx context.Context) (map[string]*redis.Client, error) {
	var mu sync.Mutex
	ms := make(map[string]*redis.Client)
	err := n.cluster.ForEachMaster(ctx, func(_ context.Context, c *redis.Client) error {
		mu.Lock()
		ms[c.Options().Addr] = c
		mu.Unlock()
		return nil
	})
	return ms, err
}

// swapTrackers makes the trackers those of masters: it returns the trackers added (not
// started) and those gone (not stopped). Any change voids the confirmation; changed
// says that OnNear's functions are to be told (see setConfirmed).
func (n *near) swapTrackers(masters map[string]*redis.Client) (added, gone []*tracker, changed bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.stopped {
		return nil, nil, false
	}
	var keep []*tracker
	have := make(map[string]bool)
	for _, t := range n.trackers {
		if masters[t.addr] != nil {
			keep = append(keep, t)
			have[t.addr] = true
		} else {
			gone = append(gone, t)
		}
	}
	for addr, c := range masters {
		if !have[addr] {
			added = append(added, n.newTracker(c.Options()))
		}
	}
	if len(added) > 0 || len(gone) > 0 {
		n.trackers = append(keep, added...)
		changed = n.setConfirmed(0)
	}
	return added, gone, changed
}

// NearGet implements driver.Near: the value kept for key, if the tracking connections
// have proved within MaxStaleness that they are receiving invalidations.
func (d *Driver) NearGet(key string) (any, bool) {
	if d.near == nil {
		return nil, false
	}
	return d.near.get(key)
}

// NearGetJoined implements driver.Near: NearGet(scope+"."+key), with the key
// joined in a buffer on the stack and only looked up, so that a near hit under a prefix
// or a namespace allocates nothing.
func (d *Driver) NearGetJoined(scope, key string) (any, bool) {
	if d.near == nil {
		return nil, false
	}
	var buf [128]byte
	if n := len(scope) + 1 + len(key); n <= len(buf) {
		b := append(append(append(buf[:0], scope...), '.'), key...)
		return d.near.get(unsafe.String(unsafe.SliceData(b), n))
	}
	return d.near.get(scope + "." + key)
}

// get is NearGet.
func (n *near) get(key string) (any, bool) {
	now := mono()
	if c := n.confirmed.Load(); c == 0 || now-c > n.maxStale {
		return nil, false
	}
	it, ok := n.local.GetIfPresent(key)
	if !ok || now >= it.end {
		return nil, false
	}
	return it.v, true
}

// NearReserve implements driver.Near: a ticket for NearFill, or 0 when the near cache is
// off, key is not under NearOptions.Prefixes, or the tracking is not current.
func (d *Driver) NearReserve(key string) uint64 {
	n := d.near
	if n == nil || !n.tracked(key) || !n.fresh() {
		return 0
	}
	return n.seq.Add(1)
}

// NearFill implements driver.Near: it keeps v for key unless an invalidation of key, a
// reset of the near tier, or the return of another read of key from Redis (see
// observed) came in after NearReserve returned ticket.
func (d *Driver) NearFill(key string, v any, ticket uint64) {
	n := d.near
	if n == nil || ticket == 0 {
		return
	}
	s := n.stripe(key)
	s.mu.Lock()
	end, known := s.ends[key]
	if known && ticket > s.inval && ticket > n.resetSeq && ticket > s.donePrev {
		delete(s.ends, key)
		n.local.Set(key, &nearItem{v: v, end: end})
	}
	s.mu.Unlock()
}
