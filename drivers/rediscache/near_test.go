package rediscache_test

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/cachekit/cache"
	"github.com/cachekit/cache/drivers/rediscache"
	"github.com/cachekit/cache/internal/testkit/faultproxy"
	"github.com/cachekit/cache/internal/testkit/redistest"
)

// The near cache (Options.Near) through the manager: hits that never reach Redis, a
// write by another client seen within MaxStaleness, the process's own writes seen at
// once, FLUSHALL and expiry, the ticket race, prefixes, namespaces, Remember, and the
// loss of the tracking connection. Another client is a plain go-redis client writing the
// codec's bytes (JSON), as redis-cli or a service in another language would.

// nearWindow is the MaxStaleness of these tests.
const nearWindow = 100 * time.Millisecond

// newNear is a cache over a driver with Near on o, closed at cleanup.
func newNear(t *testing.T, o rediscache.Options, no rediscache.NearOptions) (*cache.Cache, *rediscache.Driver) {
	t.Helper()
	if no.MaxStaleness == 0 {
		no.MaxStaleness = nearWindow
	}
	o.Near = &no
	d := newDriver(t, o)
	c, err := cache.New(cache.Config{Drivers: map[string]cache.Driver{"redis": d}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c, d
}

// waitFresh waits until d's near cache vouches for its copies.
func waitFresh(t *testing.T, d *rediscache.Driver) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !rediscache.NearFresh(d) {
		if time.Now().After(deadline) {
			t.Fatal("the near cache's tracking connection never confirmed")
		}
		time.Sleep(time.Millisecond)
	}
}

// plain is another client of url.
func plain(t *testing.T, url string) redis.UniversalClient {
	t.Helper()
	o, err := redis.ParseURL(url)
	var c redis.UniversalClient
	if err != nil || strings.Contains(url, "addr=") {
		co, cerr := redis.ParseClusterURL(url)
		if cerr != nil {
			t.Fatalf("parse %q: %v / %v", url, err, cerr)
		}
		c = redis.NewClusterClient(co)
	} else {
		c = redis.NewClient(o)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// getCalls is Redis's count of GET commands served (INFO commandstats).
func getCalls(t *testing.T, c redis.UniversalClient) int64 {
	t.Helper()
	info, err := c.Info(context.Background(), "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(info) {
		if rest, ok := strings.CutPrefix(line, "cmdstat_get:calls="); ok {
			n, _ := strconv.ParseInt(rest[:strings.IndexByte(rest, ',')], 10, 64)
			return n
		}
	}
	return 0
}

// getString reads key through the manager.
func getString(t *testing.T, c *cache.Cache, key string) (string, bool) {
	t.Helper()
	v, ok, err := cache.GetAs[string](context.Background(), c, key)
	if err != nil {
		t.Fatalf("GetAs %q: %v", key, err)
	}
	return v, ok
}

// warm reads key until the near tier holds it.
func warm(t *testing.T, c *cache.Cache, d *rediscache.Driver, key string) {
	t.Helper()
	warmAs(t, c, d, key, key)
}

// warmAs reads key until the near tier holds final, its final key.
func warmAs(t *testing.T, c *cache.Cache, d *rediscache.Driver, key, final string) {
	t.Helper()
	waitFresh(t, d)
	deadline := time.Now().Add(5 * time.Second)
	for !rediscache.NearHas(d, final) {
		if time.Now().After(deadline) {
			t.Fatalf("%q never reached the near tier", key)
		}
		getString(t, c, key)
		time.Sleep(time.Millisecond)
	}
}

func TestNearHitSkipsRedis(t *testing.T) {
	srv := redistest.Start(t)
	c, d := newNear(t, rediscache.Options{URL: srv.URL()}, rediscache.NearOptions{})
	ctx := context.Background()
	if err := c.Set(ctx, "k", "v1", 0); err != nil {
		t.Fatal(err)
	}
	warm(t, c, d, "k")
	other := plain(t, srv.URL())
	before := getCalls(t, other)
	hits := 0
	for range 1000 {
		waitFresh(t, d) // a lagging pong on a busy machine bypasses, correctly
		if v, ok := getString(t, c, "k"); !ok || v != "v1" {
			t.Fatalf("Get = %q, %v; want v1", v, ok)
		}
		hits++
	}
	if n := getCalls(t, other) - before; n > 10 {
		t.Errorf("%d reads sent %d GETs to Redis; want (almost) none", hits, n)
	}
	// With Redis gone, a hit still needs fresh tracking: after MaxStaleness, reads fail.
	srv.Stop()
	time.Sleep(2 * nearWindow)
	if rediscache.NearFresh(d) {
		t.Fatal("still fresh 2×MaxStaleness after Redis stopped")
	}
	if _, _, err := cache.GetAs[string](ctx, c, "k"); err == nil {
		t.Error("Get with Redis stopped, beyond MaxStaleness: no error; want Redis's error (no near hit)")
	}
}

func TestNearOtherWriter(t *testing.T) {
	forTargets(t, func(t *testing.T, url string) {
		c, d := newNear(t, rediscache.Options{URL: url}, rediscache.NearOptions{})
		other := plain(t, url)
		ctx := context.Background()
		key := scope("near.other")
		t.Cleanup(func() { other.Del(ctx, key) })
		var lags []time.Duration
		for i := range 50 {
			if err := other.Set(ctx, key, fmt.Sprintf("%q", strconv.Itoa(i)), 0).Err(); err != nil {
				t.Fatal(err)
			}
			if i == 0 {
				warm(t, c, d, key)
				continue
			}
			acked := time.Now()
			want := strconv.Itoa(i)
			for {
				start := time.Now()
				v, _ := getString(t, c, key)
				if v == want {
					lags = append(lags, start.Sub(acked))
					break
				}
				if start.Sub(acked) > nearWindow {
					t.Fatalf("a read that began %v after the write returned %q; want %q", start.Sub(acked), v, want)
				}
			}
			warm(t, c, d, key)
		}
		slices.Sort(lags)
		t.Logf("a write by another client seen after: median %v, max %v", lags[len(lags)/2], lags[len(lags)-1])
	})
}

func TestNearOwnWrites(t *testing.T) {
	forTargets(t, func(t *testing.T, url string) {
		c, d := newNear(t, rediscache.Options{URL: url}, rediscache.NearOptions{})
		ctx := context.Background()
		key := scope("near.own")
		t.Cleanup(func() { _ = c.Remove(ctx, key, key+".n") })
		waitFresh(t, d)
		for i := range 300 {
			want := strconv.Itoa(i)
			if err := c.Set(ctx, key, want, time.Minute); err != nil {
				t.Fatal(err)
			}
			for range 3 {
				if v, ok := getString(t, c, key); !ok || v != want {
					t.Fatalf("Get right after Set(%q) = %q, %v", want, v, ok)
				}
			}
			if i%10 == 0 {
				if err := c.Remove(ctx, key); err != nil {
					t.Fatal(err)
				}
				if v, ok := getString(t, c, key); ok {
					t.Fatalf("Get right after Remove = %q", v)
				}
			}
		}
		// Counters, SetMany and Pull.
		for i := range 20 {
			n, err := c.Increment(ctx, key+".n", 1)
			if err != nil {
				t.Fatal(err)
			}
			got, _, err := cache.GetAs[int64](ctx, c, key+".n")
			if err != nil || got != n {
				t.Fatalf("Get right after Increment #%d = %d, %v; want %d", i, got, err, n)
			}
			if err := c.SetMany(ctx, map[string]any{key: "many" + strconv.Itoa(i)}, time.Minute); err != nil {
				t.Fatal(err)
			}
			if v, _ := getString(t, c, key); v != "many"+strconv.Itoa(i) {
				t.Fatalf("Get right after SetMany = %q", v)
			}
			var pulled string
			if _, err := c.Pull(ctx, key, &pulled); err != nil {
				t.Fatal(err)
			}
			if v, ok := getString(t, c, key); ok {
				t.Fatalf("Get right after Pull = %q", v)
			}
		}
	})
}

func TestNearFlushAll(t *testing.T) {
	srv := redistest.Start(t)
	c, d := newNear(t, rediscache.Options{URL: srv.URL()}, rediscache.NearOptions{})
	other := plain(t, srv.URL())
	ctx := context.Background()
	for _, cmd := range []string{"flushall", "flushdb"} {
		if err := c.Set(ctx, "f", "v", 0); err != nil {
			t.Fatal(err)
		}
		warm(t, c, d, "f")
		if err := other.Do(ctx, cmd).Err(); err != nil {
			t.Fatal(err)
		}
		acked := time.Now()
		for {
			start := time.Now()
			if _, ok := getString(t, c, "f"); !ok {
				t.Logf("%s seen after %v", cmd, start.Sub(acked))
				break
			}
			if start.Sub(acked) > nearWindow {
				t.Fatalf("%s: a read %v later still found the key", cmd, start.Sub(acked))
			}
		}
	}
}

func TestNearExpiry(t *testing.T) {
	c, d := newNear(t, rediscache.Options{URL: redistest.URL(t)}, rediscache.NearOptions{})
	ctx := context.Background()
	key := scope("near.exp")
	const ttl = 300 * time.Millisecond
	if err := c.Set(ctx, key, "v", ttl); err != nil {
		t.Fatal(err)
	}
	set := time.Now()
	warm(t, c, d, key)
	for {
		if _, ok := getString(t, c, key); !ok {
			t.Logf("gone %v after the Set of a %v TTL (Redis's active expiry, then its invalidation)", time.Since(set), ttl)
			break
		}
		if time.Since(set) > ttl+2*time.Second {
			t.Fatal("the near tier still serves a key 2s after its Redis TTL")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestNearExpiryWithoutRedisDeleting: the near tier drops a copy when its key's TTL
// ends, even when Redis has not deleted the key yet (no invalidation is sent until it
// does: here its active expiry is off, as it is in effect for a key among many that
// its sampling has not reached).
func TestNearExpiryWithoutRedisDeleting(t *testing.T) {
	srv := redistest.StartWith(t, "--enable-debug-command", "local")
	c, d := newNear(t, rediscache.Options{URL: srv.URL()}, rediscache.NearOptions{})
	ctx := context.Background()
	if err := d.Client().Do(ctx, "debug", "set-active-expire", "0").Err(); err != nil {
		t.Fatal(err)
	}
	key := scope("near.exp.lazy")
	const ttl = 300 * time.Millisecond
	if err := c.Set(ctx, key, "v", ttl); err != nil {
		t.Fatal(err)
	}
	set := time.Now()
	warm(t, c, d, key)
	time.Sleep(ttl - time.Since(set) + 50*time.Millisecond)
	if v, ok := getString(t, c, key); ok {
		t.Fatalf("the near tier served %q %v after the Set of a %v TTL", v, time.Since(set), ttl)
	}
}

// TestNearMaxAgeSwapDB: SWAPDB replaces what every key of a database holds and Redis
// sends no invalidation for it; MaxAge is what bounds the copy. The last fill of the old
// value happens before SWAPDB is sent (one goroutine reads), so no read that begins more
// than MaxAge after that may return it.
func TestNearMaxAgeSwapDB(t *testing.T) {
	srv := redistest.Start(t)
	const maxAge = 300 * time.Millisecond
	c, d := newNear(t, rediscache.Options{URL: srv.URL()}, rediscache.NearOptions{MaxAge: maxAge})
	ctx := context.Background()
	const key = "near.swapdb"
	if err := c.Set(ctx, key, "old", 0); err != nil {
		t.Fatal(err)
	}
	db1 := plain(t, strings.TrimSuffix(srv.URL(), "/0")+"/1")
	if err := db1.Set(ctx, key, `"new"`, 0).Err(); err != nil {
		t.Fatal(err)
	}
	warm(t, c, d, key)
	swapped := time.Now() // after the last fill of "old"
	if err := db1.Do(ctx, "swapdb", 0, 1).Err(); err != nil {
		t.Fatal(err)
	}
	var old, late int
	var lastOld time.Duration
	for {
		start := time.Now()
		v, _ := getString(t, c, key)
		since := start.Sub(swapped)
		if v == "old" {
			old++
			lastOld = since
			if since > maxAge {
				late++
			}
		}
		if v == "new" && since > 2*maxAge {
			break
		}
		if since > time.Minute {
			t.Fatalf("hang detector: still no %q a minute after SWAPDB (read %q)", "new", v)
		}
		time.Sleep(time.Millisecond)
	}
	t.Logf("after SWAPDB: %d reads returned the old value (Redis sent no invalidation), the last one beginning %v after the old value's last fill", old, lastOld.Round(time.Millisecond))
	if late > 0 {
		t.Errorf("%d reads beginning more than MaxAge (%v) after the copy's fill returned it", late, maxAge)
	}
}

// racyGet is the driver with a Get that returns what Redis held when it was called, but
// only after another client has written a new value and its invalidation has been
// applied: the GET reply that loses the race with a write.
type racyGet struct {
	*rediscache.Driver
	other redis.UniversalClient
	armed atomic.Bool
}

func (r *racyGet) Get(ctx context.Context, key string) (any, bool, error) {
	v, ok, err := r.Driver.Get(ctx, key)
	if r.armed.Swap(false) {
		if err := r.other.Set(ctx, key, `"new"`, 0).Err(); err != nil {
			return nil, false, err
		}
		// The invalidation has been applied once a pong sent after the write is back.
		time.Sleep(2 * nearWindow)
		deadline := time.Now().Add(5 * time.Second)
		for !rediscache.NearFresh(r.Driver) && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
	}
	return v, ok, err
}

// TestNearTicketRace: a GET reply that raced with a write (the write and its
// invalidation land between the GET and the manager's NearFill) is never kept. Without
// the ticket check the near tier keeps "old" for good: the negative control shows the
// race happens, by filling without a ticket check (a fresh ticket taken after the
// invalidation).
func TestNearTicketRace(t *testing.T) {
	url := redistest.URL(t)
	other := plain(t, url)
	d := newDriver(t, rediscache.Options{URL: url, Near: &rediscache.NearOptions{MaxStaleness: nearWindow}})
	r := &racyGet{Driver: d, other: other}
	c, err := cache.New(cache.Config{Drivers: map[string]cache.Driver{"redis": r}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	key := scope("near.race")
	t.Cleanup(func() { other.Del(ctx, key) })
	if err := other.Set(ctx, key, `"old"`, 0).Err(); err != nil {
		t.Fatal(err)
	}
	waitFresh(t, d)
	r.armed.Store(true)
	if v, _ := getString(t, c, key); v != "old" {
		t.Fatalf("the racing read = %q; want old (read before the write)", v)
	}
	if rediscache.NearHas(d, key) {
		t.Fatal("the near tier kept a GET reply that raced with a write")
	}
	waitFresh(t, d)
	if v, _ := getString(t, c, key); v != "new" {
		t.Fatalf("next read = %q; want new", v)
	}

	// Negative control: the same reply, filled under a ticket taken after the write, is
	// kept, and then served: the stale read the ticket prevents.
	if err := other.Set(ctx, key, `"old"`, 0).Err(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * nearWindow)
	waitFresh(t, d)
	ticket := d.NearReserve(key)
	if err := other.Set(ctx, key, `"new"`, 0).Err(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * nearWindow)
	waitFresh(t, d)
	d.NearFill(key, "old", ticket)
	if rediscache.NearHas(d, key) {
		t.Fatal("NearFill kept a value under a ticket taken before the invalidation")
	}
	late := d.NearReserve(key)                    // what a fill without tickets amounts to
	if _, _, err := d.Get(ctx, key); err != nil { // the read a fill follows (it learns the TTL)
		t.Fatal(err)
	}
	d.NearFill(key, "old", late)
	if v, _ := getString(t, c, key); v != "old" {
		t.Fatalf("negative control: %q; want the stale old that a fill without the ticket check keeps", v)
	}
}

func TestNearPrefixes(t *testing.T) {
	url := redistest.URL(t)
	p := scope("np") + "."
	c, d := newNear(t, rediscache.Options{URL: url}, rediscache.NearOptions{Prefixes: []string{p + "a.", p + "b."}})
	other := plain(t, url)
	ctx := context.Background()
	t.Cleanup(func() { other.Del(ctx, p+"a.1", p+"c.1") })
	for _, k := range []string{p + "a.1", p + "c.1"} {
		if err := c.Set(ctx, k, "v", 0); err != nil {
			t.Fatal(err)
		}
	}
	warm(t, c, d, p+"a.1")
	for range 5 {
		getString(t, c, p+"c.1")
	}
	if rediscache.NearHas(d, p+"c.1") {
		t.Error("a key outside NearOptions.Prefixes was kept")
	}
	if err := other.Set(ctx, p+"a.1", `"w"`, 0).Err(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(nearWindow)
	if v, _ := getString(t, c, p+"a.1"); v != "w" {
		t.Errorf("a write under a prefix, read MaxStaleness later: %q; want w", v)
	}
	for _, bad := range [][]string{{""}, {"a", "ab"}} {
		if _, err := rediscache.New(rediscache.Options{URL: url, Near: &rediscache.NearOptions{Prefixes: bad}}); err == nil {
			t.Errorf("Prefixes %q: no error", bad)
		}
	}
}

func TestNearNamespaceAndFlush(t *testing.T) {
	url := redistest.URL(t)
	d := newDriver(t, rediscache.Options{URL: url, Near: &rediscache.NearOptions{MaxStaleness: nearWindow}})
	prefix := scope("nn")
	c, err := cache.New(cache.Config{Drivers: map[string]cache.Driver{"redis": d}, Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	t.Cleanup(func() { _ = c.Flush(ctx) })
	users := c.Namespace("users")
	if err := users.Set(ctx, "1", "ann", 0); err != nil {
		t.Fatal(err)
	}
	if err := c.Set(ctx, "other", "x", 0); err != nil {
		t.Fatal(err)
	}
	warmAs(t, users, d, "1", prefix+".users.1")
	if err := c.RemoveNamespace(ctx, "users"); err != nil {
		t.Fatal(err)
	}
	if v, ok := getString(t, users, "1"); ok {
		t.Fatalf("Get right after RemoveNamespace = %q", v)
	}
	warmAs(t, c, d, "other", prefix+".other")
	if err := c.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if v, ok := getString(t, c, "other"); ok {
		t.Fatalf("Get right after Flush = %q", v)
	}
}

func TestNearRemember(t *testing.T) {
	url := redistest.URL(t)
	c, d := newNear(t, rediscache.Options{URL: url}, rediscache.NearOptions{})
	other := plain(t, url)
	ctx := context.Background()
	key := scope("near.rem")
	t.Cleanup(func() { other.Del(ctx, key) })
	var loads atomic.Int64
	load := func(context.Context) (string, error) { loads.Add(1); return "loaded", nil }
	waitFresh(t, d)
	for range 100 {
		v, err := cache.Remember(ctx, c, key, time.Minute, load)
		if err != nil || v != "loaded" {
			t.Fatalf("Remember = %q, %v", v, err)
		}
	}
	if n := loads.Load(); n != 1 {
		t.Fatalf("loader ran %d times; want 1", n)
	}
	if !rediscache.NearHas(d, key) {
		t.Fatal("Remember's value not kept")
	}
	before := getCalls(t, other)
	for range 100 {
		waitFresh(t, d)
		if _, err := cache.Remember(ctx, c, key, time.Minute, load); err != nil {
			t.Fatal(err)
		}
	}
	if n := getCalls(t, other) - before; n > 10 {
		t.Errorf("100 Remember hits sent %d GETs", n)
	}
	if err := other.Set(ctx, key, `"theirs"`, 0).Err(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(nearWindow)
	if v, _ := cache.Remember(ctx, c, key, time.Minute, load); v != "theirs" {
		t.Fatalf("Remember MaxStaleness after another client's write = %q", v)
	}
}

func TestNearRefused(t *testing.T) {
	m := miniredis.RunT(t)
	_, err := rediscache.New(rediscache.Options{URL: "redis://" + m.Addr(), Near: &rediscache.NearOptions{}})
	if err == nil || !strings.Contains(err.Error(), "CLIENT TRACKING") {
		t.Fatalf("New with Near on miniredis: %v; want an error about CLIENT TRACKING", err)
	}
	ring := redis.NewRing(&redis.RingOptions{Addrs: map[string]string{"a": m.Addr()}})
	defer ring.Close()
	if _, err := rediscache.New(rediscache.Options{Client: ring, Near: &rediscache.NearOptions{}}); err == nil {
		t.Fatal("Near on a Ring: no error")
	}
	for _, o := range []rediscache.NearOptions{{MaxEntries: -1}, {MaxStaleness: time.Microsecond}, {MaxAge: time.Microsecond}, {MaxAge: -time.Second}} {
		if _, err := rediscache.New(rediscache.Options{URL: "redis://" + m.Addr(), Near: &o}); err == nil {
			t.Errorf("%+v: no error", o)
		}
	}
	// A Redis that cannot be reached is not an error: tracking starts when it is back.
	d, err := rediscache.New(rediscache.Options{URL: "redis://127.0.0.1:1/0", Near: &rediscache.NearOptions{}})
	if err != nil {
		t.Fatalf("New with Near and Redis down: %v", err)
	}
	_ = d.Close()
}

// staleness checks reads against the acknowledged writes of one key: values 0, 1, 2, …
// in order, value i acknowledged at acks[i].
type staleness struct {
	mu    sync.Mutex
	acks  []int64 // UnixNano
	stale atomic.Int64
	reads atomic.Int64
	worst atomic.Int64 // ns: the most a read began after the write that replaced its value
	// worstStart and worstReplaced are the instants (UnixNano) of the worst read beyond
	// the window that was not excused: when it began, and when its value was replaced.
	worstStart, worstReplaced atomic.Int64
	// excused, when set, says whether a read that began at start and returned a value
	// replaced at replaced was allowed to be stale by Redis itself (a failover's window
	// with two masters): such reads are counted in redisStale, not in stale.
	excused    func(start, replaced int64) bool
	redisStale atomic.Int64
}

// writes is the number of values acknowledged so far.
func (s *staleness) writes() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.acks)
}

func (s *staleness) acked(at int64) {
	s.mu.Lock()
	s.acks = append(s.acks, at)
	s.mu.Unlock()
}

// check records a read that began at start and returned v.
func (s *staleness) check(start int64, v int, window time.Duration) {
	s.reads.Add(1)
	s.mu.Lock()
	var by, replaced int64 = -1, 0
	if v+1 < len(s.acks) {
		replaced = s.acks[v+1]
		by = start - replaced // how long before the read began v was replaced
	}
	s.mu.Unlock()
	if by > int64(window) && s.excused != nil && s.excused(start, replaced) {
		s.redisStale.Add(1)
		return
	}
	if by > s.worst.Load() {
		s.worst.Store(by)
		if by > int64(window) {
			s.worstStart.Store(start)
			s.worstReplaced.Store(replaced)
		}
	}
	if by > int64(window) {
		s.stale.Add(1)
	}
}

// coherence runs readers through c and a writer through other for run, with brk
// breaking the tracking in the middle, and fails on any read beyond the window.
func coherence(t *testing.T, c *cache.Cache, other redis.UniversalClient, key string, run time.Duration, brk func()) {
	t.Helper()
	coherenceExcusing(t, c, other, key, run, brk, nil)
}

// coherenceExcusing is coherence, with the stale reads that excused allows counted
// apart (see staleness.excused) and logged, not failed.
func coherenceExcusing(t *testing.T, c *cache.Cache, other redis.UniversalClient, key string, run time.Duration, brk func(), excused func(start, replaced int64) bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), run)
	defer cancel()
	s := &staleness{excused: excused}
	if err := other.Set(context.Background(), key, "0", 0).Err(); err != nil {
		t.Fatal(err)
	}
	s.acked(time.Now().UnixNano())
	var wg sync.WaitGroup
	var wfail atomic.Int64
	wg.Go(func() {
		// A write that fails (Redis failing over) is tried again: value i counts from
		// its first acknowledgement.
		for i := 1; ctx.Err() == nil; {
			wctx, wcancel := context.WithTimeout(context.Background(), time.Second)
			err := other.Set(wctx, key, strconv.Itoa(i), 0).Err()
			wcancel()
			if err != nil {
				wfail.Add(1)
				time.Sleep(10 * time.Millisecond)
				continue
			}
			s.acked(time.Now().UnixNano())
			i++
			time.Sleep(2 * time.Millisecond)
		}
	})
	var errs atomic.Int64
	for range 4 {
		wg.Go(func() {
			for ctx.Err() == nil {
				start := time.Now().UnixNano()
				rctx, rcancel := context.WithTimeout(context.Background(), time.Second)
				v, ok, err := cache.GetAs[int](rctx, c, key)
				rcancel()
				if err != nil || !ok {
					errs.Add(1)
					time.Sleep(time.Millisecond)
					continue
				}
				s.check(start, v, nearWindow)
			}
		})
	}
	// With excused (a failover), a control reader reads through other, a client without
	// a near cache, checked by the same rule: its stale reads, if any, are Redis's own
	// (a window with two masters, an acknowledged write lost), and tell a failure of the
	// near cache from one of Redis. It is logged only: it excuses nothing.
	plainReads := &staleness{}
	if excused != nil {
		wg.Go(func() {
			for ctx.Err() == nil {
				start := time.Now().UnixNano()
				rctx, rcancel := context.WithTimeout(context.Background(), time.Second)
				raw, err := other.Get(rctx, key).Result()
				rcancel()
				v, perr := strconv.Atoi(raw)
				if err != nil || perr != nil {
					time.Sleep(time.Millisecond)
					continue
				}
				plainReads.check(start, v, nearWindow)
			}
		})
	}
	time.Sleep(run / 3)
	brokeAt := time.Now().UnixNano()
	brk()
	broken := s.writes()
	wg.Wait()
	t.Logf("%d writes (%d failed and were tried again), %d reads (%d failed while the link was broken), %d beyond the window; worst: a read began %v after its value was replaced",
		s.writes(), wfail.Load(), s.reads.Load(), errs.Load(), s.stale.Load(), time.Duration(s.worst.Load()))
	if s.stale.Load() > 0 {
		t.Logf("the worst read beyond the window began %v after the break began; its value was replaced %v after it",
			time.Duration(s.worstStart.Load()-brokeAt), time.Duration(s.worstReplaced.Load()-brokeAt))
	}
	if excused != nil {
		t.Logf("%d reads beyond the window while Redis itself had two masters (excused)", s.redisStale.Load())
		t.Logf("control: %d reads through a client without the near cache, %d beyond the window; worst: a read began %v after its value was replaced",
			plainReads.reads.Load(), plainReads.stale.Load(), time.Duration(plainReads.worst.Load()))
		if plainReads.stale.Load() > 0 {
			t.Logf("control: its worst read beyond the window began %v after the break began; its value was replaced %v after it",
				time.Duration(plainReads.worstStart.Load()-brokeAt), time.Duration(plainReads.worstReplaced.Load()-brokeAt))
		}
	}
	if s.writes() == broken {
		t.Error("no write was acknowledged after the break: nothing was checked")
	}
	if n := s.stale.Load(); n > 0 {
		t.Errorf("%d reads returned a value replaced more than MaxStaleness (%v) before they began", n, nearWindow)
	}
}

// TestNearTrackingKilled: the tracking connection is killed (CLIENT KILL TYPE pubsub)
// while readers read and another client writes: no read beyond the window, and the near
// tier works again afterwards.
func TestNearTrackingKilled(t *testing.T) {
	srv := redistest.Start(t)
	c, d := newNear(t, rediscache.Options{URL: srv.URL()}, rediscache.NearOptions{})
	other := plain(t, srv.URL())
	waitFresh(t, d)
	coherence(t, c, other, "kill", 3*time.Second, func() {
		for range 3 {
			if err := other.Do(context.Background(), "client", "kill", "type", "pubsub").Err(); err != nil {
				t.Error(err)
			}
			time.Sleep(200 * time.Millisecond)
		}
	})
	waitFresh(t, d)
}

// routedClient is a client of addr whose connections dial where route says at the time
// of the dial.
func routedClient(t *testing.T, addr string, route *atomic.Pointer[string]) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{
		Addr:                  addr,
		ContextTimeoutEnabled: true,
		Dialer: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, *route.Load())
		},
	})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// TestNearTrackingFrozen: the tracking connection alone is frozen (a partition of that
// link: bytes held, nothing closed) while readers read and another client writes. The
// pongs stop, so after MaxStaleness every read goes to Redis: no read beyond the window.
// The silent connection is replaced after a while, and the near tier works again.
func TestNearTrackingFrozen(t *testing.T) {
	srv := redistest.Start(t)
	p, err := faultproxy.New(srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var route atomic.Pointer[string]
	pa, direct := p.Addr(), srv.Addr()
	route.Store(&pa) // New dials the tracking connection first, through the proxy
	rdb := routedClient(t, srv.Addr(), &route)
	c, d := newNear(t, rediscache.Options{Client: rdb}, rediscache.NearOptions{})
	route.Store(&direct) // the reads, and a new tracking connection, go direct
	other := plain(t, srv.URL())
	waitFresh(t, d)
	coherence(t, c, other, "freeze", 4*time.Second, func() {
		p.Freeze()
		time.Sleep(2 * nearWindow)
		if rediscache.NearFresh(d) {
			t.Error("still fresh 2×MaxStaleness into the freeze of the tracking connection")
		}
	})
	p.Thaw()
	waitFresh(t, d)
}

// TestNearAllFrozen: every connection of the driver is frozen for a second (Redis as
// good as paused, for this process) while another client keeps writing: reads fail or
// wait, but none returns a value replaced more than MaxStaleness before it began.
func TestNearAllFrozen(t *testing.T) {
	srv := redistest.Start(t)
	p, err := faultproxy.New(srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c, d := newNear(t, rediscache.Options{URL: "redis://" + p.Addr() + "/0"}, rediscache.NearOptions{})
	other := plain(t, srv.URL())
	waitFresh(t, d)
	coherence(t, c, other, "pause", 4*time.Second, func() {
		p.Freeze()
		time.Sleep(time.Second)
		p.Thaw()
	})
	waitFresh(t, d)
}

// cacheGetString is GetAs[string] with its error.
func cacheGetString(ctx context.Context, c *cache.Cache, key string) (string, bool, error) {
	return cache.GetAs[string](ctx, c, key)
}
