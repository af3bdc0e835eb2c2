package promcache_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/logging"

	"github.com/cachekit/cache"
	"github.com/cachekit/cache/drivers/rediscache"
	"github.com/cachekit/cache/internal/testkit/redistest"
	"github.com/cachekit/cache/observability/promcache"
	"github.com/cachekit/cache/observability/slogcache"
)

// Figures of the outage that TestOutageSignals plays.
const (
	outageRate     = 50               // Remember calls a second, for the whole run
	outageLength   = 20 * time.Second // how long redis-server stays stopped
	outageWarmup   = 3 * time.Second  // load before the stop
	outageAfter    = 3 * time.Second  // load after the breaker has closed again
	outageCallTime = 5 * time.Second  // each call's own context deadline
	outageKeys     = 200              // distinct keys: the calls cycle through them
	outageMaxLines = 10               // what an operator is promised
	hangDetector   = time.Minute
)

// TestOutageSignals plays what an operator is promised for a Redis outage: a real
// redis-server, stopped for 20 s and started again on the same port, under 50 fail-open
// Remember calls a second, logs at most 10 lines in all (slogcache's subscription, with
// the zero Options but for the kinds a busy service logs, and go-redis's own lines
// through slogcache.RedisLogger, both collapsing over their default interval), one of
// them "cache breaker.opened" and one "cache breaker.closed"; every call returns the
// loader's value; and promcache shows the breaker open and reads failing open while
// Redis is down, and the breaker closed once it is back.
func TestOutageSignals(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: plays a 20 s Redis outage under load, about 30 s")
	}
	if redistest.Binary() == "" && !redistest.InCI() {
		t.Skip("redis-server is not on PATH")
	}
	srv := redistest.Start(t)
	if srv.Kind() != redistest.KindRedisServer {
		t.Fatalf("redistest.Start gave a %s; this test needs a redis-server it can stop", srv.Kind())
	}

	var out lockedBuffer
	logger := slog.New(slog.NewJSONHandler(&out, nil))
	rl := slogcache.RedisLogger(logger, 0)
	redis.SetLogger(rl) // one logger per process: put go-redis's default back after
	t.Cleanup(logging.Enable)

	d, err := rediscache.New(rediscache.Options{URL: srv.URL()})
	if err != nil {
		t.Fatal(err)
	}
	c, err := cache.New(cache.Config{Drivers: map[string]cache.Driver{"redis": d}, FailOpen: true, Metrics: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	stopLog := slogcache.SubscribeWith(c, logger, slogcache.Options{}) // the defaults

	col, err := promcache.NewCollector(c, "outage")
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(col)
	const (
		openSeries       = `outage_cache_breaker_open{driver="redis"}`
		failedOpenSeries = `outage_cache_failed_open_total{driver="redis"}`
		openedSeries     = `outage_cache_breaker_opened_total{driver="redis"}`
		closedSeries     = `outage_cache_breaker_closed_total{driver="redis"}`
	)
	// waitFor scrapes the registry until ok holds, and fails the test after a minute.
	waitFor := func(what string, ok func(map[string]float64) bool) map[string]float64 {
		t.Helper()
		deadline := time.Now().Add(hangDetector)
		for {
			m, _ := scrape(t, reg)
			if ok(m) {
				return m
			}
			if time.Now().After(deadline) {
				t.Fatalf("no scrape showed %s within %v; the last: open %v, failed open %v", what, hangDetector, m[openSeries], m[failedOpenSeries])
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	// The load: a call every tick, each in a goroutine of its own, as a service's
	// requests would come, on keys that repeat every outageKeys calls.
	var (
		wg       sync.WaitGroup
		calls    atomic.Int64
		failures atomic.Int64
		firstErr atomic.Value
		loads    atomic.Int64
	)
	stopLoad := make(chan struct{})
	loadDone := make(chan struct{})
	go func() {
		defer close(loadDone)
		tick := time.NewTicker(time.Second / outageRate)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-stopLoad:
				return
			case <-tick.C:
			}
			key := fmt.Sprintf("user.%d", i%outageKeys)
			want := "loaded " + key
			wg.Go(func() {
				ctx, cancel := context.WithTimeout(context.Background(), outageCallTime)
				defer cancel()
				v, err := cache.Remember(ctx, c, key, time.Minute, func(context.Context) (string, error) {
					loads.Add(1)
					return want, nil
				})
				calls.Add(1)
				if err != nil || v != want {
					if failures.Add(1) == 1 {
						firstErr.Store(fmt.Sprintf("Remember(%q) = %q, %v; want %q, nil", key, v, err, want))
					}
				}
			})
		}
	}()
	endLoad := sync.OnceFunc(func() {
		close(stopLoad)
		<-loadDone
		wg.Wait()
	})
	t.Cleanup(endLoad) // before the cache is closed, when the test ends early

	time.Sleep(outageWarmup)
	if m, _ := scrape(t, reg); m[openSeries] != 0 {
		t.Fatalf("breaker open = %v before the stop; want 0", m[openSeries])
	}

	srv.Stop()
	stopped := time.Now()
	down := waitFor("breaker open = 1 and failed-open reads", func(m map[string]float64) bool {
		return m[openSeries] == 1 && m[failedOpenSeries] > 0
	})
	time.Sleep(time.Until(stopped.Add(outageLength)))
	last, _ := scrape(t, reg) // the last scrape before the restart: still open
	if last[openSeries] != 1 {
		t.Errorf("breaker open = %v at the end of the outage; want 1", last[openSeries])
	}

	srv.Restart(t)
	waitFor("breaker open = 0 after the restart", func(m map[string]float64) bool { return m[openSeries] == 0 })
	time.Sleep(outageAfter)
	endLoad()

	dropped := stopLog() // logs the counts of the collapsed errors
	rl.Flush()           // and of go-redis's lines
	final, _ := scrape(t, reg)

	lines, opened, closed := outageLines(t, out.String())
	t.Logf("%d Remember calls (%d loads), %d failed; failed open %v (%v while down, %v at the end of the outage); breaker opened %v, closed %v; %d log lines (%d breaker.opened, %d breaker.closed), %d events dropped:\n%s",
		calls.Load(), loads.Load(), failures.Load(), final[failedOpenSeries], down[failedOpenSeries], last[failedOpenSeries],
		final[openedSeries], final[closedSeries], len(lines), opened, closed, dropped, strings.Join(lines, "\n"))

	if n := failures.Load(); n > 0 {
		t.Errorf("%d of %d Remember calls did not return the loader's value; the first: %v", n, calls.Load(), firstErr.Load())
	}
	if final[openSeries] != 0 {
		t.Errorf("breaker open = %v after the restart; want 0", final[openSeries])
	}
	if final[openedSeries] != 1 || final[closedSeries] != 1 {
		t.Errorf("breaker opened %v times, closed %v times; want once each", final[openedSeries], final[closedSeries])
	}
	if dropped != 0 {
		t.Errorf("the log subscription dropped %d events", dropped)
	}
	if len(lines) > outageMaxLines || opened != 1 || closed != 1 {
		t.Errorf("the outage logged %d lines, %d breaker.opened and %d breaker.closed; want at most %d, one of each (the lines are above)",
			len(lines), opened, closed, outageMaxLines)
	}
}

// outageLines splits the JSON log into its lines and counts those of the breaker's
// changes.
func outageLines(t *testing.T, log string) (lines []string, opened, closed int) {
	t.Helper()
	for line := range strings.Lines(log) {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		lines = append(lines, line)
		var r struct{ Msg string }
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		switch r.Msg {
		case "cache breaker.opened":
			opened++
		case "cache breaker.closed":
			closed++
		}
	}
	return lines, opened, closed
}

// lockedBuffer is a bytes.Buffer safe for concurrent use: go-redis may log from any
// goroutine while the test reads.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
