package cache_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cachekit/cache"
	"github.com/cachekit/cache/driver"
	"github.com/cachekit/cache/drivers/memorycache"
)

// checked is a memory driver with checks of its own (a Doctor method): they return
// findings once release is closed, or nothing once ctx ends.
type checked struct {
	*memorycache.Driver
	release chan struct{}
	mu      sync.Mutex
	runs    int
}

func (d *checked) Doctor(ctx context.Context) []driver.Finding {
	d.mu.Lock()
	d.runs++
	d.mu.Unlock()
	select {
	case <-d.release:
	case <-ctx.Done():
		return nil
	}
	return []driver.Finding{
		{Severity: driver.SeverityOK, Check: "fine", Message: "all good"},
		{Severity: driver.SeverityWarning, Check: "persistence", Message: "a restart loses the locks", Fix: "turn it on"},
		{Severity: driver.SeverityError, Check: "policy", Message: "keys are evicted"},
	}
}

func (d *checked) runCount() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.runs
}

func newChecked(t *testing.T) *checked {
	t.Helper()
	mem, err := memorycache.New(memorycache.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return &checked{Driver: mem, release: make(chan struct{})}
}

// TestCheckOnStart: the checks run once; each warning and error is an EventFinding, in
// the checks' order, with the check as Key and the finding (errors.As) as Err; a
// subscription made after they were reported gets them too, once.
func TestCheckOnStart(t *testing.T) {
	d := newChecked(t)
	var mu sync.Mutex
	var hooked []cache.Event
	c := newCache(t, cache.Config{
		Drivers:      map[string]cache.Driver{"mem": d},
		CheckOnStart: true,
		Hooks: []cache.Hook{{Kinds: []cache.EventKind{cache.EventFinding}, Observe: func(e cache.Event) {
			mu.Lock()
			hooked = append(hooked, e)
			mu.Unlock()
		}}},
	})
	early := record(c, cache.EventFinding) // made before the findings
	close(d.release)
	want := []string{"finding Doctor persistence (err)", "finding Doctor policy (err)"}
	early.expect(t, "a subscription made before the checks ended", want...)
	late := record(c, cache.EventFinding, cache.EventHit) // made after
	late.expect(t, "a subscription made after the checks ended", want...)
	none := record(c, cache.EventHit, cache.EventError)
	if _, err := c.Get(context.Background(), "missing", new(int)); err != nil {
		t.Fatal(err)
	}
	none.expect(t, "a subscription to other kinds")
	mu.Lock()
	defer mu.Unlock()
	if len(hooked) != 2 {
		t.Fatalf("the hook saw %d findings; want 2", len(hooked))
	}
	for i, sev := range []driver.Severity{driver.SeverityWarning, driver.SeverityError} {
		e := hooked[i]
		var f driver.Finding
		if !errors.As(e.Err, &f) || f.Severity != sev || e.Key != f.Check || e.Driver != "mem" || e.Op != "Doctor" {
			t.Errorf("finding event %d: %+v", i, e)
		}
		if e.Err.Error() != f.String() {
			t.Errorf("a finding's Error() %q is not its String() %q", e.Err.Error(), f.String())
		}
	}
	if d.runCount() != 1 {
		t.Errorf("the checks ran %d times; want once", d.runCount())
	}
}

// TestCheckOnStartOff: without Config.CheckOnStart no check runs.
func TestCheckOnStartOff(t *testing.T) {
	d := newChecked(t)
	close(d.release)
	c := newCache(t, cache.Config{Drivers: map[string]cache.Driver{"mem": d}})
	r := record(c, cache.EventFinding)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if got := r.take(); len(got) != 0 || d.runCount() != 0 {
		t.Fatalf("without CheckOnStart: %d runs, events %q", d.runCount(), got)
	}
}

// TestCheckOnStartClose: Close stops checks that are still running (it returns without
// them ending on their own), and nothing is reported after it.
func TestCheckOnStartClose(t *testing.T) {
	d := newChecked(t)
	c := newCache(t, cache.Config{Drivers: map[string]cache.Driver{"mem": d}, CheckOnStart: true})
	r := record(c, cache.EventFinding)
	deadline := time.Now().Add(hangAfter)
	for d.runCount() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the checks never started")
		}
		time.Sleep(time.Millisecond)
	}
	if err := c.Close(); err != nil { // the checks are waiting for release
		t.Fatal(err)
	}
	close(d.release)
	if got := r.take(); len(got) != 0 {
		t.Fatalf("events of checks stopped by Close: %q", got)
	}
}

// TestEventKindNames: every kind has a name of its own.
func TestEventKindNames(t *testing.T) {
	var names []string
	for k := cache.EventHit; k <= cache.EventFinding; k++ {
		if n := k.String(); n == "unknown" || slices.Contains(names, n) {
			t.Errorf("kind %d is named %q", k, n)
		} else {
			names = append(names, n)
		}
	}
	for k, want := range map[cache.EventKind]string{cache.EventNearDropped: "near.dropped", cache.EventNearRestored: "near.restored", cache.EventFinding: "finding"} {
		if k.String() != want {
			t.Errorf("%d.String() = %q; want %q", k, k.String(), want)
		}
	}
	if n := (cache.EventFinding + 1).String(); n != "unknown" {
		t.Errorf("the kind after the last is named %q", n)
	}
}
