package slogcache_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cachekit/cache"
	"github.com/cachekit/cache/drivers/memorycache"
	"github.com/cachekit/cache/observability/slogcache"
)

// syncBuffer is a bytes.Buffer for a handler written from several goroutines (the
// subscription's and the collapsing timers').
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) records(t *testing.T) []map[string]any {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	return records(t, &s.b)
}

// bubbleCache is newCache for a synctest bubble: it is closed by the returned func,
// inside the bubble.
func bubbleCache(t *testing.T) (*cache.Cache, func()) {
	t.Helper()
	mem, err := memorycache.New(memorycache.Options{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := cache.New(cache.Config{Drivers: map[string]cache.Driver{"mem": mem}})
	if err != nil {
		t.Fatal(err)
	}
	return c, func() { _ = c.Close() }
}

// failGets makes n Gets fail with the same kind of error (a string decoded into an
// int), each on a key of its own.
func failGets(t *testing.T, c *cache.Cache, n int) {
	t.Helper()
	ctx := context.Background()
	for i := range n {
		key := "k" + strings.Repeat("x", i%7)
		if err := c.Set(ctx, key, "text", 0); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Get(ctx, key, new(int)); err == nil {
			t.Fatal("Get of a string into an int succeeded")
		}
	}
}

// TestCollapseErrors: by default the first of repeated errors is logged, the others of
// the interval make one record with their count, and an interval without errors ends
// the collapsing.
func TestCollapseErrors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, closeCache := bubbleCache(t)
		defer closeCache()
		var buf syncBuffer
		stop := slogcache.Subscribe(c, slog.New(slog.NewJSONHandler(&buf, nil)), slog.LevelInfo, cache.EventError)
		defer stop()

		failGets(t, c, 100)
		synctest.Wait()
		if got := buf.records(t); len(got) != 1 || got[0]["repeated"] != nil {
			t.Fatalf("after 100 errors: %d records %v; want the first error alone", len(got), got)
		}
		time.Sleep(slogcache.DefaultCollapse)
		synctest.Wait()
		got := buf.records(t)
		if len(got) != 2 || got[1]["repeated"] != float64(99) || got[1]["op"] != "Get" || got[1]["driver"] != "mem" {
			t.Fatalf("after the interval: %v; want a second record with repeated 99", got)
		}
		time.Sleep(2 * slogcache.DefaultCollapse)
		synctest.Wait()
		if got := buf.records(t); len(got) != 2 {
			t.Fatalf("an interval without errors logged %v", got[2:])
		}
		failGets(t, c, 1)
		synctest.Wait()
		if got := buf.records(t); len(got) != 3 || got[2]["repeated"] != nil {
			t.Fatalf("an error after a quiet interval: %v; want it logged at once", got)
		}

		// Another kind of error (an invalid key) is not collapsed with the first.
		_, _ = c.Get(context.Background(), "", new(int))
		synctest.Wait()
		if got := buf.records(t); len(got) != 4 {
			t.Fatalf("an error of another kind: %d records; want 4", len(got))
		}

		// stop logs the pending count.
		failGets(t, c, 5)
		stop()
		got = buf.records(t)
		if len(got) != 5 || got[4]["repeated"] != float64(5) {
			t.Fatalf("stop with 5 errors pending: %v; want a record with repeated 5", got)
		}
	})
}

func TestCollapseOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, closeCache := bubbleCache(t)
		defer closeCache()
		var buf syncBuffer
		stop := slogcache.SubscribeWith(c, slog.New(slog.NewJSONHandler(&buf, nil)),
			slogcache.Options{Level: slog.LevelInfo, Kinds: []cache.EventKind{cache.EventError}, Collapse: -1})
		failGets(t, c, 10)
		stop()
		if got := buf.records(t); len(got) != 10 {
			t.Fatalf("Collapse -1: %d records; want 10", len(got))
		}
	})
}

func TestCollapseInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, closeCache := bubbleCache(t)
		defer closeCache()
		var buf syncBuffer
		stop := slogcache.SubscribeWith(c, slog.New(slog.NewJSONHandler(&buf, nil)),
			slogcache.Options{Kinds: []cache.EventKind{cache.EventError}, Collapse: 5 * time.Second})
		defer stop()
		failGets(t, c, 3)
		time.Sleep(5 * time.Second)
		synctest.Wait()
		got := buf.records(t)
		if len(got) != 2 || got[1]["repeated"] != float64(2) || got[1]["interval"] != float64(5*time.Second) {
			t.Fatalf("records %v; want the first, then repeated 2 with interval 5s", got)
		}
	})
}

// TestRedisLogger: go-redis's lines become slog records, collapsed by format.
func TestRedisLogger(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var buf syncBuffer
		l := slogcache.RedisLogger(slog.New(slog.NewJSONHandler(&buf, nil)), 0)
		ctx := context.Background()
		for i := range 50 {
			l.Printf(ctx, "redis: %s: connection pool: failed to dial after %d attempts: %v", "127.0.0.1:6379", i, "connection refused")
		}
		l.Printf(ctx, "redis: cluster: %s", "another line")
		synctest.Wait()
		got := buf.records(t)
		if len(got) != 2 || got[0]["source"] != "go-redis" || got[0]["level"] != "WARN" ||
			!strings.Contains(got[0]["msg"].(string), "failed to dial after 0 attempts") {
			t.Fatalf("records %v; want the first dial line and the other line, at WARN, source go-redis", got)
		}
		time.Sleep(slogcache.DefaultCollapse)
		synctest.Wait()
		got = buf.records(t)
		if len(got) != 3 || got[2]["repeated"] != float64(49) || !strings.Contains(got[2]["msg"].(string), "after 49 attempts") {
			t.Fatalf("records %v; want a third with repeated 49 and the last line", got)
		}
		// The other line's interval ended without repeats: the next is logged at once.
		l.Printf(ctx, "redis: cluster: %s", "again")
		l.Printf(ctx, "redis: cluster: %s", "and again")
		l.Flush()
		got = buf.records(t)
		if len(got) != 5 || got[3]["repeated"] != nil || got[4]["repeated"] != float64(1) || got[4]["msg"] != "redis: cluster: and again" {
			t.Fatalf("after Flush: %v; want the line logged at once, then the last one with repeated 1", got)
		}
		l.Printf(ctx, "redis: cluster: %s", "after the flush")
		if got := buf.records(t); len(got) != 6 {
			t.Fatalf("a line after Flush: %d records; want it logged at once", len(got))
		}
		time.Sleep(slogcache.DefaultCollapse) // the timers end
	})
	redis.SetLogger(slogcache.RedisLogger(slog.New(slog.DiscardHandler), -1)) // it is a go-redis logger
}
