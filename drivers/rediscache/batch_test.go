package rediscache_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cachekit/cache"
	"github.com/cachekit/cache/driver"
	"github.com/cachekit/cache/drivers/rediscache"
	"github.com/cachekit/cache/drivertest"
	"github.com/cachekit/cache/internal/testkit/redistest"
)

// The tests of batching (go-redis's automatic pipelining, on unless Options.NoBatch).
// Every other test of the package runs with batching on, the cross-process tests
// included; a test whose callers are concurrent batches (most are sequential, and a
// caller alone takes the fast path). These tests make sure that batching happens and
// that the lock's promises hold through it, and run the conformance suite again without
// it, so that both paths stay covered.

// TestNoBatchConformance runs the driver conformance suite with Options.NoBatch, on a
// single Redis and on a Cluster.
func TestNoBatchConformance(t *testing.T) {
	for _, tg := range targets {
		t.Run(tg.name, func(t *testing.T) {
			tg.url(t)
			newPlain := func(t *testing.T, ttl time.Duration) driver.Driver {
				return newDriver(t, rediscache.Options{URL: tg.url(t), DefaultTTL: ttl, NoBatch: true})
			}
			drivertest.RunWith(t, drivertest.Harness{
				New:               func(t *testing.T) driver.Driver { return newPlain(t, 0) },
				NewWithDefaultTTL: newPlain,
				Plant:             plantHash,
			})
		})
	}
}

// pipelineCounter is a go-redis hook that counts the pipelines of more than one command
// the client sends, and the commands in them.
type pipelineCounter struct {
	pipelines, cmds atomic.Int64
}

func (*pipelineCounter) DialHook(next redis.DialHook) redis.DialHook { return next }

func (*pipelineCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }

func (h *pipelineCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if len(cmds) > 1 {
			h.pipelines.Add(1)
			h.cmds.Add(int64(len(cmds)))
		}
		return next(ctx, cmds)
	}
}

// batchedClient returns a client on url (a single node or a Cluster) that counts its
// pipelines, closed at the end of the test after the driver.
func batchedClient(t *testing.T, url string, h *pipelineCounter) redis.UniversalClient {
	t.Helper()
	var c redis.UniversalClient
	if url == redistest.URL(t) {
		o, err := redis.ParseURL(url)
		if err != nil {
			t.Fatal(err)
		}
		o.ContextTimeoutEnabled = true
		c = redis.NewClient(o)
	} else {
		o, err := redis.ParseClusterURL(url)
		if err != nil {
			t.Fatal(err)
		}
		o.ContextTimeoutEnabled = true
		c = redis.NewClusterClient(o)
	}
	c.AddHook(h)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// TestBatchLockExclusion: 64 goroutines over two drivers (two clients:
// two processes as far as Redis can tell) take turns on 4 keys with cache.Lock, 50
// attempts each; an overlap detector inside fn never sees two holders of one key, every
// attempt acquires or is refused (no errors), and the clients did send pipelines of
// several commands: batching was on, and the locks went through it.
func TestBatchLockExclusion(t *testing.T) {
	forTargets(t, func(t *testing.T, url string) {
		const goroutines, attempts, keys = 64, 50, 4
		var hooks [2]pipelineCounter
		var caches [2]*cache.Cache
		prefix := scope("batchlock")
		for i := range caches {
			d := newDriver(t, rediscache.Options{Client: batchedClient(t, url, &hooks[i])})
			c, err := cache.New(cache.Config{Drivers: map[string]cache.Driver{"redis": d}, Prefix: prefix})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = c.Close() })
			caches[i] = c
		}
		t.Cleanup(func() { _ = caches[0].Flush(context.Background()) })
		var (
			inside                      [keys]atomic.Int32
			acquired, refused, overlaps atomic.Int64
			wg                          sync.WaitGroup
			firstErr                    sync.Once
		)
		ctx := context.Background()
		for g := range goroutines {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c := caches[g%2]
				for i := range attempts {
					k := (g + i) % keys
					out, err := cache.Lock(ctx, c, fmt.Sprintf("lock.%d", k), 10*time.Second, func(context.Context) (struct{}, error) {
						if inside[k].Add(1) != 1 {
							overlaps.Add(1)
						}
						time.Sleep(50 * time.Microsecond)
						inside[k].Add(-1)
						return struct{}{}, nil
					})
					switch {
					case err != nil:
						firstErr.Do(func() { t.Errorf("goroutine %d, attempt %d: %v", g, i, err) })
					case out.Acquired:
						acquired.Add(1)
					default:
						refused.Add(1)
					}
				}
			}()
		}
		wg.Wait()
		t.Logf("%d acquired, %d refused, %d overlaps; pipelines of several commands: %d and %d (%d and %d commands)",
			acquired.Load(), refused.Load(), overlaps.Load(), hooks[0].pipelines.Load(), hooks[1].pipelines.Load(), hooks[0].cmds.Load(), hooks[1].cmds.Load())
		if overlaps.Load() != 0 {
			t.Fatalf("%d overlaps: two holders of one key at once", overlaps.Load())
		}
		if n := acquired.Load() + refused.Load(); n != goroutines*attempts {
			t.Fatalf("acquired + refused = %d, want %d", n, goroutines*attempts)
		}
		if acquired.Load() == 0 || refused.Load() == 0 {
			t.Fatalf("acquired %d, refused %d: the goroutines did not contend", acquired.Load(), refused.Load())
		}
		if hooks[0].pipelines.Load() == 0 || hooks[1].pipelines.Load() == 0 {
			t.Fatal("a client sent no pipeline of several commands: batching did not happen, the test proves nothing")
		}
		// Every lock is gone: each release deleted its own.
		for k := range keys {
			if ok, err := caches[0].Has(ctx, fmt.Sprintf("lock.%d", k)); err != nil || ok {
				t.Errorf("lock.%d still present after every release (%v, %v)", k, ok, err)
			}
		}
	})
}

// TestBatchHonoursDeadlineOnFrozenConnection: with batching, concurrent callers
// whose commands wait in a pipeline that never answers (a frozen connection) return at
// their own context's deadline, as with NoBatch, not after the client's ReadTimeout
// (go-redis runs a pipeline on the autopipeliner's context, not the callers'). The
// client's timeouts are two minutes, so that only the callers' deadlines can end the calls
// before the one-minute hang detector: no stopwatch bound.
func TestBatchHonoursDeadlineOnFrozenConnection(t *testing.T) {
	srv := redistest.Start(t)
	if srv.Kind() != redistest.KindRedisServer {
		t.Skip("needs redis-server")
	}
	px := startFreezeProxy(t, srv.Addr())
	// ContextTimeoutEnabled, so that a command that takes the fast path (alone, on a
	// pooled connection) also ends at its deadline, as it does with NoBatch.
	rdb := redis.NewClient(&redis.Options{Addr: px.addr(), ContextTimeoutEnabled: true, ReadTimeout: 2 * time.Minute, WriteTimeout: 2 * time.Minute})
	t.Cleanup(func() { _ = rdb.Close() })
	d := newDriver(t, rediscache.Options{Client: rdb})
	ctx := context.Background()
	key := scope("frozen")
	if err := d.Set(ctx, driver.Entry{Key: key, Value: []byte(`"v"`)}); err != nil {
		t.Fatal(err)
	}
	px.freeze(true)
	defer px.freeze(false)

	const callers, deadline = 16, 200 * time.Millisecond
	var wg sync.WaitGroup
	took := make([]time.Duration, callers)
	errs := make([]error, callers)
	for i := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			cctx, cancel := context.WithTimeout(ctx, deadline)
			defer cancel()
			if i%2 == 0 {
				_, _, errs[i] = d.Get(cctx, key)
			} else {
				_, errs[i] = d.CompareAndDelete(cctx, key, []byte(`"tok"`))
			}
			took[i] = time.Since(start)
		}()
	}
	wg.Wait()
	for i := range callers {
		if errs[i] == nil {
			t.Errorf("caller %d through a frozen connection: no error", i)
		}
		if took[i] < deadline || took[i] > time.Minute { // time.Minute: a hang detector
			t.Errorf("caller %d returned after %v; want at its ctx deadline %v (%v)", i, took[i], deadline, errs[i])
		}
	}
	t.Logf("through a frozen connection, ctx deadline %v: the slowest of %d callers returned after %v", deadline, callers, maxDuration(took).Round(time.Millisecond))
}

func maxDuration(ds []time.Duration) time.Duration {
	var m time.Duration
	for _, d := range ds {
		m = max(m, d)
	}
	return m
}
