package bench

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bsm/redislock"
	"github.com/go-redsync/redsync/v4"
	"github.com/redis/go-redis/v9"

	"github.com/cachekit/cache"
)

// TestRedisHandoff measures a lock's handoff latency on Redis: a holder takes
// the lock, a waiter starts asking for it (at one of arrivals), the holder releases it
// holdFor after it took it, and
// the latency is the time from the holder's call to release to the moment the waiter
// holds the lock (for cachekit: its fn is running). Each implementation hands off to
// itself, holder and waiter on clients of their own (two processes, in effect), with its
// retry settings as people configure it. It logs a table; it asserts nothing about the
// numbers, only that every handoff happened.
//
// By default it makes a few handoffs per implementation, to keep `go test ./...` fast;
// docs/benchmarks.md's table comes from
//
//	go test -count=1 -v -run TestRedisHandoff -handoffs 50 .
var handoffs = flag.Int("handoffs", 3, "handoffs per implementation in TestRedisHandoff (docs/benchmarks.md uses 50)")

// holdFor is how long the holder keeps the lock.
const holdFor = 20 * time.Millisecond

// arrivals are when the waiter starts asking, after the holder took the lock: spread
// evenly over the first 15 ms of the hold, in an order shuffled once (the same for
// every implementation), so that the waiter has tried at least once, 5 ms or more
// before the release. A fixed arrival would lock a fixed poll interval in phase with
// the release and make it look better or worse than it is: with the waiter arriving
// at a random moment, a poll every P ms costs about P/2 on average.
var arrivals = func() []time.Duration {
	a := make([]time.Duration, 50)
	for i := range a {
		a[i] = time.Duration(i) * (holdFor - 5*time.Millisecond) / time.Duration(len(a))
	}
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(a), func(i, j int) { a[i], a[j] = a[j], a[i] })
	return a
}()

// waitMax bounds every waiter.
const waitMax = 5 * time.Second

// handoffSide is one side of a handoff, on a client of its own. hold takes the lock
// once, without waiting, and returns its release; wait blocks until it holds the lock,
// calls acquired at once, and then releases it.
type handoffSide struct {
	hold func(ctx context.Context, key string) (release func(context.Context) error, err error)
	wait func(ctx context.Context, key string, acquired func()) error
}

type handoffImpl struct {
	name, settings string
	// side builds a side; n counts the commands its client sends (Pub/Sub aside).
	side func(tb testing.TB, n *atomic.Int64) handoffSide
}

var handoffImpls = []handoffImpl{
	{"cachekit", "LockOptions{Wait: 5s}: Pub/Sub wake-up, polls 10 ms → 250 ms with jitter as the safety net", cachekitSide},
	{"redislock-linear-10ms", "RetryStrategy: LinearBackoff(10ms)", redislockSide(func() redislock.RetryStrategy {
		return redislock.LinearBackoff(10 * time.Millisecond)
	})},
	{"redislock-linear-100ms", "RetryStrategy: LinearBackoff(100ms), as in its example", redislockSide(func() redislock.RetryStrategy {
		return redislock.LinearBackoff(100 * time.Millisecond)
	})},
	{"redislock-exp-16ms-1s", "RetryStrategy: ExponentialBackoff(16ms, 1s), a new one per Obtain", redislockSide(func() redislock.RetryStrategy {
		return redislock.ExponentialBackoff(16*time.Millisecond, time.Second)
	})},
	{"redsync-default", "defaults: 32 tries, a random delay in [50 ms, 250 ms)", redsyncSide()},
	{"redsync-10ms", "WithRetryDelay(10ms), WithTries(500)", redsyncSide(redsync.WithRetryDelay(10*time.Millisecond), redsync.WithTries(500))},
}

// countingClient returns a client of its own that counts the commands it sends.
func countingClient(tb testing.TB, n *atomic.Int64) *redis.Client {
	tb.Helper()
	rdb := newRedisClient(tb)
	rdb.AddHook(commandCounter{n})
	return rdb
}

type commandCounter struct{ n *atomic.Int64 }

func (commandCounter) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h commandCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.n.Add(1)
		return next(ctx, cmd)
	}
}

func (h commandCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.n.Add(int64(len(cmds)))
		return next(ctx, cmds)
	}
}

func cachekitSide(tb testing.TB, n *atomic.Int64) handoffSide {
	c := newRedisCacheOn(tb, countingClient(tb, n))
	return handoffSide{
		hold: func(ctx context.Context, key string) (func(context.Context) error, error) {
			l, err := cache.Acquire(ctx, c, key, cache.LockOptions{TTL: lockTTL})
			if err != nil {
				return nil, err
			}
			return l.Release, nil
		},
		wait: func(ctx context.Context, key string, acquired func()) error {
			out, err := cache.LockWith(ctx, c, key, cache.LockOptions{TTL: lockTTL, Wait: waitMax},
				func(context.Context) (struct{}, error) {
					acquired()
					return struct{}{}, nil
				})
			if err == nil && !out.Acquired {
				err = cache.ErrNotAcquired
			}
			return err
		},
	}
}

func redislockSide(strategy func() redislock.RetryStrategy) func(testing.TB, *atomic.Int64) handoffSide {
	return func(tb testing.TB, n *atomic.Int64) handoffSide {
		rl := redislock.New(countingClient(tb, n))
		return handoffSide{
			hold: func(ctx context.Context, key string) (func(context.Context) error, error) {
				l, err := rl.Obtain(ctx, key, lockTTL, nil)
				if err != nil {
					return nil, err
				}
				return l.Release, nil
			},
			wait: func(ctx context.Context, key string, acquired func()) error {
				ctx, cancel := context.WithTimeout(ctx, waitMax)
				defer cancel()
				l, err := rl.Obtain(ctx, key, lockTTL, &redislock.Options{RetryStrategy: strategy()})
				if err != nil {
					return err
				}
				acquired()
				return l.Release(ctx)
			},
		}
	}
}

func redsyncSide(opts ...redsync.Option) func(testing.TB, *atomic.Int64) handoffSide {
	return func(tb testing.TB, n *atomic.Int64) handoffSide {
		rs := redsync.New(goredisPool(countingClient(tb, n)))
		unlock := func(m *redsync.Mutex) func(context.Context) error {
			return func(ctx context.Context) error {
				switch ok, err := m.UnlockContext(ctx); {
				case err != nil:
					return err
				case !ok:
					return errors.New("redsync: Unlock found the lock gone")
				}
				return nil
			}
		}
		return handoffSide{
			hold: func(ctx context.Context, key string) (func(context.Context) error, error) {
				m := rs.NewMutex(key, redsync.WithTries(1), redsync.WithExpiry(lockTTL))
				if err := m.LockContext(ctx); err != nil {
					return nil, err
				}
				return unlock(m), nil
			},
			wait: func(ctx context.Context, key string, acquired func()) error {
				ctx, cancel := context.WithTimeout(ctx, waitMax)
				defer cancel()
				m := rs.NewMutex(key, append([]redsync.Option{redsync.WithExpiry(lockTTL)}, opts...)...)
				if err := m.LockContext(ctx); err != nil {
					return err
				}
				acquired()
				return unlock(m)(ctx)
			},
		}
	}
}

// handoffResult is one implementation's measurements.
type handoffResult struct {
	latencies []time.Duration
	commands  float64 // commands sent by the waiter per handoff
}

// measureHandoffs makes n handoffs of impl's lock and returns their latencies.
func measureHandoffs(t *testing.T, impl handoffImpl, n int) handoffResult {
	t.Helper()
	var holderCmds, waiterCmds atomic.Int64
	holder, waiter := impl.side(t, &holderCmds), impl.side(t, &waiterCmds)
	key := redisScope + "handoff." + impl.name
	var res handoffResult
	for i := range n {
		release, err := holder.hold(ctx, key)
		if err != nil {
			t.Fatalf("%s: handoff %d: the holder did not get the lock: %v", impl.name, i, err)
		}
		waiterCmds.Store(0)
		var acquiredAt time.Time
		done := make(chan error, 1)
		arrive := arrivals[i%len(arrivals)]
		time.Sleep(arrive)
		go func() {
			done <- waiter.wait(ctx, key, func() { acquiredAt = time.Now() })
		}()
		time.Sleep(holdFor - arrive)
		releasedAt := time.Now()
		if err := release(ctx); err != nil {
			t.Fatalf("%s: handoff %d: release: %v", impl.name, i, err)
		}
		if err := <-done; err != nil {
			t.Fatalf("%s: handoff %d: the waiter did not get the lock: %v", impl.name, i, err)
		}
		res.latencies = append(res.latencies, acquiredAt.Sub(releasedAt))
		res.commands += float64(waiterCmds.Load())
	}
	res.commands /= float64(n)
	return res
}

func TestRedisHandoff(t *testing.T) {
	n := *handoffs
	if n < 1 {
		t.Fatalf("-handoffs %d: want at least 1", n)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d handoffs each, the holder holding %v, the waiter arriving 0 to 15 ms into the hold; %s\n\n",
		n, holdFor, redisKindName(t))
	fmt.Fprintf(&b, "| impl | settings | median | p90 | min | max | waiter commands per handoff |\n")
	fmt.Fprintf(&b, "|---|---|--:|--:|--:|--:|--:|\n")
	for _, impl := range handoffImpls {
		res := measureHandoffs(t, impl, n)
		l := slices.Sorted(slices.Values(res.latencies))
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %.1f |\n", impl.name, impl.settings,
			ms(quantile(l, 0.5)), ms(quantile(l, 0.9)), ms(l[0]), ms(l[len(l)-1]), res.commands)
	}
	t.Logf("release → next holder running:\n%s", b.String())
}

// quantile returns the q-quantile of sorted, the nearest rank's value (the median of an
// even count is the mean of the middle two).
func quantile(sorted []time.Duration, q float64) time.Duration {
	n := len(sorted)
	if q == 0.5 && n%2 == 0 {
		return (sorted[n/2-1] + sorted[n/2]) / 2
	}
	i := int(q*float64(n)+0.999999) - 1 // ceil(q*n) - 1
	return sorted[max(0, min(i, n-1))]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond)) }
