package rediscache_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cachekit/cache"
	"github.com/cachekit/cache/driver"
	"github.com/cachekit/cache/drivers/rediscache"
	"github.com/cachekit/cache/internal/testkit/redistest"
)

// TestLockReplicasOptions: New refuses a negative LockReplicas or LockReplicasTimeout,
// LockReplicas on a client whose pipelines may not keep WAIT on the writer's connection
// (a Ring), and a LockReplicasTimeout not below the client's ReadTimeout.
func TestLockReplicasOptions(t *testing.T) {
	one := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", ReadTimeout: 150 * time.Millisecond})
	ring := redis.NewRing(&redis.RingOptions{Addrs: map[string]string{"a": "127.0.0.1:1"}})
	t.Cleanup(func() { _ = one.Close(); _ = ring.Close() })
	for _, c := range []struct {
		name string
		o    rediscache.Options
		want string
	}{
		{"negative", rediscache.Options{Client: one, LockReplicas: -1}, "negative"},
		{"negative timeout", rediscache.Options{Client: one, LockReplicas: 1, LockReplicasTimeout: -time.Second}, "negative"},
		{"ring", rediscache.Options{Client: ring, LockReplicas: 1}, "*redis.Ring"},
		{"read timeout", rediscache.Options{Client: one, LockReplicas: 1}, "ReadTimeout"},
	} {
		d, err := rediscache.New(c.o)
		if err == nil {
			_ = d.Close()
			t.Errorf("%s: New succeeded", c.name)
			continue
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v; want an error that mentions %q", c.name, err, c.want)
		}
	}
	d, err := rediscache.New(rediscache.Options{Client: one, LockReplicas: 1, LockReplicasTimeout: 40 * time.Millisecond})
	if err != nil {
		t.Fatalf("LockReplicasTimeout below ReadTimeout: %v", err)
	}
	_ = d.Close()
}

// TestLockReplicasWithoutReplicas: with LockReplicas 1 on a Redis that has no replica
// (the test's single node and its Cluster's masters), every write a lock depends on
// fails with ErrNotReplicated after LockReplicasTimeout, or sooner at the context's
// deadline: an acquisition (SetIf IfAbsent, CreateFenced) removes what it wrote, a
// renewal (Extend) reports the error, and cache.Acquire returns an error that is not
// ErrNotAcquired. Writes that do not happen (a held key, another token) are not errors.
func TestLockReplicasWithoutReplicas(t *testing.T) {
	forTargets(t, func(t *testing.T, url string) {
		if url == redistest.URL(t) && redistest.Kind() == redistest.KindMiniredis {
			t.Skip("miniredis has no WAIT")
		}
		const timeout = 50 * time.Millisecond
		d := newDriver(t, rediscache.Options{URL: url, LockReplicas: 1, LockReplicasTimeout: timeout})
		ctx := context.Background()
		rdb := d.Client()
		waits := watchArgs(t, rdb, "wait")
		key := scope("repl")
		v := []byte(`"tok"`)
		t.Cleanup(func() { rdb.Del(ctx, key) })

		notReplicated := func(what string, took time.Duration, err error, want time.Duration) {
			t.Helper()
			t.Logf("%s: %v after %v", what, err, took.Round(time.Millisecond))
			if !errors.Is(err, rediscache.ErrNotReplicated) {
				t.Fatalf("%s: %v; want ErrNotReplicated", what, err)
			}
			// WAIT was sent with the timeout, and it waited for it: a lower bound, which
			// no busy scheduler can break. How much longer it took (Redis checks a
			// blocked command's timeout on its cron) is logged above, not asserted.
			if ms := waitTimeout(waits); ms != want.Milliseconds() {
				t.Fatalf("%s: WAIT's timeout %d ms; want %d", what, ms, want.Milliseconds())
			}
			if took < want-5*time.Millisecond || took > time.Minute { // time.Minute: a hang detector
				t.Fatalf("%s took %v; want at least WAIT's %v", what, took, want)
			}
		}
		gone := func(what string) {
			t.Helper()
			if n, err := rdb.Exists(ctx, key).Result(); err != nil || n != 0 {
				t.Fatalf("%s: the key is still there (EXISTS %d, %v)", what, n, err)
			}
		}

		start := time.Now()
		ok, err := d.SetIf(ctx, driver.Entry{Key: key, Value: v, TTL: time.Minute}, driver.IfAbsent)
		notReplicated("SetIf IfAbsent", time.Since(start), err, timeout)
		if ok {
			t.Fatal("SetIf reported written with an error")
		}
		gone("after SetIf")

		start = time.Now()
		n, ok, err := d.CreateFenced(ctx, driver.Entry{Key: key, Value: v, TTL: time.Minute})
		notReplicated("CreateFenced", time.Since(start), err, timeout)
		if ok || n != 0 {
			t.Fatalf("CreateFenced handed out %d, %v with an error", n, ok)
		}
		gone("after CreateFenced")

		// The context's deadline bounds WAIT: its timeout is three quarters of what is
		// left of the context when that is shorter than LockReplicasTimeout.
		cctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
		start = time.Now()
		_, err = d.SetIf(cctx, driver.Entry{Key: key, Value: v, TTL: time.Minute}, driver.IfAbsent)
		cancel()
		took := time.Since(start)
		t.Logf("SetIf with a 20 ms ctx: %v after %v", err, took.Round(time.Millisecond))
		if ms := waitTimeout(waits); err == nil || ms < 1 || ms > 15 {
			t.Fatalf("SetIf with a 20 ms ctx: %v, WAIT's timeout %d ms; want an error, and a timeout of at most 15 ms (3/4 of the ctx)", err, ms)
		}
		gone("after SetIf with a short ctx")

		// A held key: not written, no error, no WAIT.
		if err := rdb.Set(ctx, key, v, time.Minute).Err(); err != nil {
			t.Fatal(err)
		}
		if ok, err := d.SetIf(ctx, driver.Entry{Key: key, Value: []byte("other"), TTL: time.Minute}, driver.IfAbsent); ok || err != nil {
			t.Fatalf("SetIf on a held key: %v, %v; want false, nil", ok, err)
		}
		if n, ok, err := d.CreateFenced(ctx, driver.Entry{Key: key, Value: []byte("other"), TTL: time.Minute}); ok || err != nil {
			t.Fatalf("CreateFenced on a held key: %d, %v, %v; want 0, false, nil", n, ok, err)
		}
		// SetIf IfPresent is not a lock's write: no WAIT.
		if ok, err := d.SetIf(ctx, driver.Entry{Key: key, Value: v, TTL: time.Minute}, driver.IfPresent); !ok || err != nil {
			t.Fatalf("SetIf IfPresent: %v, %v; want true, nil", ok, err)
		}
		start = time.Now()
		ok, err = d.Extend(ctx, key, v, time.Minute)
		notReplicated("Extend", time.Since(start), err, timeout)
		if ok, err := d.Extend(ctx, key, []byte("other"), time.Minute); ok || err != nil {
			t.Fatalf("Extend with another token: %v, %v; want false, nil", ok, err)
		}
		rdb.Del(ctx, key)

		// Through the manager: an error, never ErrNotAcquired.
		c, err := cache.New(cache.Config{Drivers: map[string]cache.Driver{"redis": d}, Prefix: scope("replc")})
		if err != nil {
			t.Fatal(err)
		}
		_, err = cache.Acquire(ctx, c, "lock.job", cache.LockOptions{TTL: time.Minute})
		t.Logf("cache.Acquire: %v", err)
		if !errors.Is(err, rediscache.ErrNotReplicated) || errors.Is(err, cache.ErrNotAcquired) {
			t.Fatalf("cache.Acquire: %v; want ErrNotReplicated and not ErrNotAcquired", err)
		}
		_, err = cache.Acquire(ctx, c, "lock.job", cache.LockOptions{TTL: time.Minute, Fencing: true})
		if !errors.Is(err, rediscache.ErrNotReplicated) || errors.Is(err, cache.ErrNotAcquired) {
			t.Fatalf("cache.Acquire with Fencing: %v; want ErrNotReplicated and not ErrNotAcquired", err)
		}
	})
}

// lastArgs is a go-redis hook that keeps the arguments of the last command named name
// the client sent, on its own or in a pipeline: what the driver asked of Redis, read
// without a stopwatch.
type lastArgs struct {
	name string
	mu   sync.Mutex
	args []any
}

func (*lastArgs) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *lastArgs) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.see(cmd)
		return next(ctx, cmd)
	}
}

func (h *lastArgs) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, cmd := range cmds {
			h.see(cmd)
		}
		return next(ctx, cmds)
	}
}

func (h *lastArgs) see(cmd redis.Cmder) {
	if strings.EqualFold(cmd.Name(), h.name) {
		h.mu.Lock()
		h.args = slices.Clone(cmd.Args())
		h.mu.Unlock()
	}
}

// get returns the arguments of the last such command, nil before any.
func (h *lastArgs) get() []any {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.args
}

// watchArgs adds a lastArgs hook for the command name to rdb: to each node's client on
// a Cluster as well, as the driver sends WAIT on the connection of the key's master.
func watchArgs(t *testing.T, rdb redis.UniversalClient, name string) *lastArgs {
	h := &lastArgs{name: name}
	c, ok := rdb.(*redis.ClusterClient)
	if !ok {
		rdb.AddHook(h)
		return h
	}
	c.AddHook(h)
	c.OnNewNode(func(n *redis.Client) { n.AddHook(h) })
	if err := c.ForEachShard(context.Background(), func(_ context.Context, n *redis.Client) error {
		n.AddHook(h)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return h
}

// waitTimeout is the timeout of the last WAIT h saw (a "wait" lastArgs), in
// milliseconds; -1 before any.
func waitTimeout(h *lastArgs) int64 {
	if args := h.get(); len(args) == 3 {
		if ms, ok := args[2].(int64); ok {
			return ms
		}
	}
	return -1
}
