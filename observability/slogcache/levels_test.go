package slogcache_test

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/cachekit/cache"
	"github.com/cachekit/cache/driver"
	"github.com/cachekit/cache/drivers/memorycache"
	"github.com/cachekit/cache/observability/slogcache"
)

// stateful is a memory driver with checks (Doctor) and a near tier that reports its
// changes (OnNear), which the test drives by hand.
type stateful struct {
	*memorycache.Driver
	mu     sync.Mutex
	onNear []func(serving bool)
}

func (d *stateful) Doctor(context.Context) []driver.Finding {
	return []driver.Finding{
		{Severity: driver.SeverityOK, Check: "fine", Message: "all good"},
		{Severity: driver.SeverityWarning, Check: "persistence", Message: "a restart loses the locks", Fix: "appendonly yes"},
		{Severity: driver.SeverityError, Check: "maxmemory-policy", Message: "keys are evicted"},
	}
}

func (d *stateful) OnNear(fn func(serving bool)) {
	d.mu.Lock()
	d.onNear = append(d.onNear, fn)
	d.mu.Unlock()
}

func (d *stateful) near(serving bool) {
	d.mu.Lock()
	fns := d.onNear
	d.mu.Unlock()
	for _, fn := range fns {
		fn(serving)
	}
}

// TestLevels: findings are logged at Warn (warnings) and Error (errors), with their
// severity, message and fix; a near tier's drop at Warn and its restore at Info, above
// the subscription's level Debug.
func TestLevels(t *testing.T) {
	mem, err := memorycache.New(memorycache.Options{})
	if err != nil {
		t.Fatal(err)
	}
	d := &stateful{Driver: mem}
	c, err := cache.New(cache.Config{Drivers: map[string]cache.Driver{"redis": d}, CheckOnStart: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	kinds := []cache.EventKind{cache.EventFinding, cache.EventNearDropped, cache.EventNearRestored}
	var debug, errs syncBuffer
	opts := &slog.HandlerOptions{Level: slog.LevelDebug}
	// The checks may report before the subscriptions are made: they get the findings all
	// the same.
	stopDebug := slogcache.Subscribe(c, slog.New(slog.NewJSONHandler(&debug, opts)), slog.LevelDebug, kinds...)
	errsOnly := &slog.HandlerOptions{Level: slog.LevelError}
	stopErrs := slogcache.Subscribe(c, slog.New(slog.NewJSONHandler(&errs, errsOnly)), slog.LevelDebug, kinds...)
	d.near(false)
	d.near(true)
	deadline := time.Now().Add(time.Minute) // a hang detector
	for len(debug.records(t)) < 4 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	stopDebug()
	stopErrs()
	want := map[string]string{ // kind and key → level
		"finding persistence":      "WARN",
		"finding maxmemory-policy": "ERROR",
		"near.dropped ":            "WARN",
		"near.restored ":           "INFO",
	}
	got := debug.records(t)
	if len(got) != len(want) {
		t.Fatalf("records %v; want %d", got, len(want))
	}
	for _, r := range got {
		k := r["kind"].(string) + " " + r["key"].(string)
		if r["level"] != want[k] || r["driver"] != "redis" {
			t.Errorf("record %v; want level %s and driver redis", r, want[k])
		}
		if r["kind"] == "finding" {
			if r["severity"] == nil || r["message"] == nil || r["op"] != "Doctor" || r["err"] != nil {
				t.Errorf("finding record %v; want severity and message, no err", r)
			}
			if (r["key"] == "persistence") != (r["fix"] == "appendonly yes") {
				t.Errorf("finding record %v: fix", r)
			}
		}
	}
	errRecords := errs.records(t)
	if len(errRecords) != 1 {
		t.Errorf("through a handler at level Error, %d records; want the error finding's", len(errRecords))
	}
	for _, r := range errRecords {
		if r["level"] != "ERROR" {
			t.Errorf("through a handler at level Error, record %v", r)
		}
	}
}
