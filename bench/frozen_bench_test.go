package bench

import (
	"context"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cachekit/cache"
	"github.com/cachekit/cache/internal/testkit/faultproxy"
	"github.com/cachekit/cache/internal/testkit/pgtest"
)

// frozenDeadline is the ctx deadline of each call in BenchmarkDeadlineOnFrozenLink.
const frozenDeadline = 50 * time.Millisecond

// BenchmarkDeadlineOnFrozenLink measures how far past its ctx deadline a call returns
// when the link to the store freezes (a partition: a proxy, internal/testkit/faultproxy, stops
// forwarding bytes and closes nothing), on Redis (a client with ContextTimeoutEnabled)
// and PostgreSQL: a Get, and a held lock's Extend (on Redis: the driver's lock client).
// Each iteration freezes the link, makes one call with a 50 ms deadline, thaws the link
// and waits, off the clock, until the store answers again. It reports:
//
//	overshoot-p50-ms, overshoot-max-ms   return − deadline
//
// The tests check that such calls fail and return (nothing but the deadline can end
// them on a frozen link); the target is in docs/benchmarks.md:
//
//	cd bench && go test -run '^$' -bench BenchmarkDeadlineOnFrozenLink -benchtime 20x .
func BenchmarkDeadlineOnFrozenLink(b *testing.B) {
	for _, s := range []struct {
		name string
		// open returns a cache over the store, reached through the proxy p.
		open func(b *testing.B) (*cache.Cache, *faultproxy.Proxy)
	}{
		{"redis", func(b *testing.B) (*cache.Cache, *faultproxy.Proxy) {
			o, err := redis.ParseURL(redisURL(b))
			if err != nil {
				b.Fatal(err)
			}
			p := frozenProxy(b, o.Addr)
			o.Addr, o.ContextTimeoutEnabled = p.Addr(), true
			rdb := redis.NewClient(o)
			b.Cleanup(func() { _ = rdb.Close() })
			return newRedisCacheOn(b, rdb), p
		}},
		{"postgres", func(b *testing.B) (*cache.Cache, *faultproxy.Proxy) {
			srv := pgtest.Start(b)
			u, err := url.Parse(srv.URL())
			if err != nil {
				b.Fatal(err)
			}
			p := frozenProxy(b, srv.Addr())
			u.Host = p.Addr()
			return newPgCache(b, u.String(), false), p
		}},
	} {
		b.Run(s.name, func(b *testing.B) {
			c, p := s.open(b)
			key := redisScope + "frozen." + s.name
			h, err := cache.Acquire(ctx, c, key+".lock", cache.LockOptions{TTL: time.Hour})
			if err != nil {
				b.Fatal(err)
			}
			for _, op := range []struct {
				name string
				f    func(ctx context.Context) error
			}{
				{"get", func(ctx context.Context) error { var v string; _, err := c.Get(ctx, key, &v); return err }},
				{"extend", func(ctx context.Context) error { return h.Extend(ctx, time.Hour) }},
			} {
				b.Run(op.name, func(b *testing.B) { frozenCalls(b, c, p, key, op.f) })
			}
		})
	}
}

// frozenProxy is a proxy to target, closed at b's cleanup.
func frozenProxy(b *testing.B, target string) *faultproxy.Proxy {
	p, err := faultproxy.New(target)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = p.Close() })
	return p
}

// frozenCalls runs f once per iteration over the frozen link and reports how far past
// frozenDeadline it returned.
func frozenCalls(b *testing.B, c *cache.Cache, p *faultproxy.Proxy, key string, f func(context.Context) error) {
	var over []time.Duration
	for b.Loop() {
		p.Freeze()
		fctx, cancel := context.WithTimeout(ctx, frozenDeadline)
		start := time.Now()
		err := f(fctx)
		over = append(over, time.Since(start)-frozenDeadline)
		cancel()
		p.Thaw()
		if err == nil {
			b.Fatal("a call over a frozen link answered")
		}
		b.StopTimer()
		settle(b, c, key)
		b.StartTimer()
	}
	slices.Sort(over)
	b.ReportMetric(msOf(quantile(over, 0.5)), "overshoot-p50-ms")
	b.ReportMetric(msOf(over[len(over)-1]), "overshoot-max-ms")
}

// settle waits until the store answers through c again (the pool drops the
// connections the freeze left mid-reply), for up to a minute.
func settle(b *testing.B, c *cache.Cache, key string) {
	for deadline := time.Now().Add(time.Minute); ; {
		sctx, cancel := context.WithTimeout(ctx, time.Second)
		err := c.Set(sctx, key, "v", time.Minute)
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("the store does not answer a minute after the thaw: %v", err)
		}
	}
}
