package slogcache_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/cachekit/cache"
	"github.com/cachekit/cache/drivers/memorycache"
	"github.com/cachekit/cache/observability/slogcache"
)

func newCache(t *testing.T) *cache.Cache {
	t.Helper()
	mem, err := memorycache.New(memorycache.Options{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := cache.New(cache.Config{Drivers: map[string]cache.Driver{"mem": mem}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// records decodes the JSON handler's output, one record a line.
func records(t *testing.T, b *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for line := range strings.Lines(b.String()) {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("not JSON: %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

func TestSubscribe(t *testing.T) {
	c := newCache(t)
	ctx := context.Background()
	var buf bytes.Buffer
	l := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	before := time.Now()
	sub := slogcache.Subscribe(c, l, slog.LevelDebug, slogcache.AllKinds()...)

	if err := c.Set(ctx, "user.1", "alice", time.Minute); err != nil {
		t.Fatal(err)
	}
	var s string
	if _, err := c.Get(ctx, "user.1", &s); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get(ctx, "user.2", &s); err != nil {
		t.Fatal(err)
	}
	var n int
	if _, err := c.Get(ctx, "user.1", &n); err == nil { // a string into an int
		t.Fatal("Get of a string into an int succeeded")
	}
	if _, err := cache.Lock(ctx, c, "lock.job", time.Minute, func(context.Context) (int, error) { return 1, nil }); err != nil {
		t.Fatal(err)
	}
	sub() // delivers what is queued

	got := records(t, &buf)
	want := []struct{ msg, level, kind, op, key string }{
		{"cache set", "DEBUG", "set", "Set", "user.1"},
		{"cache hit", "DEBUG", "hit", "Get", "user.1"},
		{"cache miss", "DEBUG", "miss", "Get", "user.2"},
		{"cache error", "ERROR", "error", "Get", "user.1"},
		{"cache lock.acquired", "DEBUG", "lock.acquired", "Lock", "lock.job"},
		{"cache lock.released", "DEBUG", "lock.released", "Release", "lock.job"},
	}
	if len(got) != len(want) {
		t.Fatalf("%d records; want %d:\n%s", len(got), len(want), buf.String())
	}
	for i, w := range want {
		r := got[i]
		if r["msg"] != w.msg || r["level"] != w.level || r["kind"] != w.kind || r["op"] != w.op || r["key"] != w.key || r["driver"] != "mem" {
			t.Errorf("record %d = %v; want %+v with driver mem", i, r, w)
		}
		ts, err := time.Parse(time.RFC3339Nano, r["time"].(string))
		if err != nil || ts.Before(before.Add(-time.Second)) || ts.After(time.Now()) {
			t.Errorf("record %d time %v (%v)", i, r["time"], err)
		}
		_, hasErr := r["err"]
		if hasErr != (w.kind == "error") {
			t.Errorf("record %d err = %v", i, r["err"])
		}
	}
	if e, _ := got[3]["err"].(string); !strings.Contains(e, "does not fit") {
		t.Errorf("error record's err = %q; want the decoding error", e)
	}
}

// TestLevel: events below the handler's level cost an Enabled call and are not logged;
// errors are logged at Error whatever the level.
func TestLevel(t *testing.T) {
	c := newCache(t)
	ctx := context.Background()
	var buf bytes.Buffer
	sub := slogcache.Subscribe(c, slog.New(slog.NewJSONHandler(&buf, nil)), slog.LevelDebug, slogcache.AllKinds()...)
	_ = c.Set(ctx, "k", "v", time.Minute)
	var n int
	_, _ = c.Get(ctx, "k", &n)
	sub()
	got := records(t, &buf)
	if len(got) != 1 || got[0]["kind"] != "error" || got[0]["level"] != "ERROR" {
		t.Fatalf("records at handler level Info = %v; want only the error", got)
	}

	buf.Reset()
	sub = slogcache.Subscribe(c, slog.New(slog.NewJSONHandler(&buf, nil)), slog.LevelWarn, slogcache.AllKinds()...)
	_, _ = c.Get(ctx, "k", new(string))
	sub()
	if got := records(t, &buf); len(got) != 1 || got[0]["level"] != "WARN" || got[0]["kind"] != "hit" {
		t.Fatalf("records at level Warn = %v; want the hit at WARN", got)
	}
}

// TestDefaultKinds: without kinds, the operations' events are not logged, whatever
// the level; errors are.
func TestDefaultKinds(t *testing.T) {
	c := newCache(t)
	ctx := context.Background()
	var buf bytes.Buffer
	sub := slogcache.Subscribe(c, slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})), slog.LevelDebug)
	_ = c.Set(ctx, "k", "v", time.Minute)
	_, _ = c.Get(ctx, "k", new(string))
	_, _ = c.Get(ctx, "k", new(int))
	sub()
	if got := records(t, &buf); len(got) != 1 || got[0]["kind"] != "error" {
		t.Fatalf("records with the default kinds = %v; want the error alone", got)
	}
	all := slogcache.AllKinds()
	if len(all) < len(slogcache.DefaultKinds()) || all[0] != cache.EventHit || all[len(all)-1].String() == "unknown" {
		t.Errorf("AllKinds = %v", all)
	}
}

// TestKinds: with kinds, only those are logged.
func TestKinds(t *testing.T) {
	c := newCache(t)
	ctx := context.Background()
	var buf bytes.Buffer
	sub := slogcache.Subscribe(c, slog.New(slog.NewJSONHandler(&buf, nil)), slog.LevelInfo, cache.EventError)
	_ = c.Set(ctx, "k", "v", time.Minute)
	_, _ = c.Get(ctx, "k", new(string))
	_, _ = c.Get(ctx, "k", new(int))
	sub()
	if got := records(t, &buf); len(got) != 1 || got[0]["kind"] != "error" {
		t.Fatalf("records for errors only = %v; want the error", got)
	}
}

func TestStopOnClose(t *testing.T) {
	c := newCache(t)
	var buf bytes.Buffer
	sub := slogcache.Subscribe(c, slog.New(slog.NewJSONHandler(&buf, nil)), slog.LevelInfo)
	_ = c.Close()
	if n := sub(); n != 0 { // returns: Close stopped it
		t.Errorf("dropped %d", n)
	}
}

func ExampleSubscribe() {
	mem, _ := memorycache.New(memorycache.Options{})
	c, _ := cache.New(cache.Config{Drivers: map[string]cache.Driver{"memory": mem}})
	defer c.Close()

	// Log lock events and errors at Info; a handler at Info keeps them. Hits, misses
	// and writes are not asked for, so they cost the cache's calls nothing.
	sub := slogcache.Subscribe(c, slog.Default(), slog.LevelInfo, cache.EventError,
		cache.EventLockAcquired, cache.EventLockContended, cache.EventLockReleased, cache.EventLockLost)
	defer sub()
	_, _ = cache.Lock(context.Background(), c, "lock.report", time.Minute, func(context.Context) (int, error) { return 0, nil })
}
