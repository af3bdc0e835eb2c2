package bench

import (
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/cachekit/cache"
	"github.com/cachekit/cache/drivers/memorycache"
)

// The events benchmarks measure what observing a cache adds to a memory Get hit (the
// targets are in docs/benchmarks.md, Events). Each runs the same Get loop on a
// cachekit-memory cache (as BenchmarkGetHit's impl=cachekit-memory) in four setups:
//
//	none      nobody observes: what every Get pays for events is one atomic load
//	errors    a subscriber to the error and lock events only (what an alerting or
//	          tracing subscriber wants): a hit is an event nobody wants
//	metrics   Config.Metrics: a sharded counter per event, the latency of one Get in 64
//	all       a subscriber to every kind, with a handler that does nothing: each hit is
//	          queued for it and handed to it on its goroutine
//
// and two values: the bench's usual string (read into a *string, the fast path of the
// manager's assign), and a small struct (read into a *small, through reflection).
//
// BenchmarkEvents runs each setup on its own (value=…/setup=…, for benchstat -col
// /setup). On a shared machine the load of other processes moves such runs more than
// the few nanoseconds measured here, so BenchmarkEventsInterleaved runs the four setups
// in turns of eventsBatch Gets and reports ns/<setup> and the overhead of each setup
// over none as pct-<setup>, all from the same stretch of time.

type small struct {
	ID   int
	Name string
}

var eventSetups = []string{"none", "errors", "metrics", "all"}

// eventsBuffer is the subscriptions' buffer: large, so that the handler's goroutine
// rarely falls behind far enough to drop (a dropped event costs less than a queued one,
// which would flatter the setup). Drops are reported as dropped-pct.
const eventsBuffer = 1 << 16

// newEventsCache returns a memory cache in the named setup, holding every key with
// value(i), and the subscription of the setup (nil for none and metrics).
func newEventsCache(tb testing.TB, setup string, value func(i int) any) (*cache.Cache, func() int64) {
	tb.Helper()
	d, err := memorycache.New(memorycache.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	c, err := cache.New(cache.Config{Drivers: map[string]cache.Driver{"memory": d}, Metrics: setup == "metrics"})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = c.Close() })
	var sub func() int64
	switch setup {
	case "errors":
		sub = c.Subscribe(eventsBuffer, func(cache.Event) {}, cache.EventError,
			cache.EventLockAcquired, cache.EventLockContended, cache.EventLockReleased, cache.EventLockLost)
	case "all":
		sub = c.Subscribe(eventsBuffer, func(cache.Event) {})
	}
	for i, k := range keys {
		if err := c.Set(ctx, k, value(i), time.Hour); err != nil {
			tb.Fatal(err)
		}
	}
	return c, sub
}

func stringValue(i int) any { return vals[i] }
func smallValue(i int) any  { return small{ID: i, Name: vals[i]} }

// getStrings reads n keys from i on, as strings.
func getStrings(c *cache.Cache, i, n int) error {
	for end := i + n; i < end; i++ {
		var v string
		if found, err := c.Get(ctx, keys[i&mask], &v); !found || err != nil {
			return fmt.Errorf("Get %s: found %v, err %v", keys[i&mask], found, err)
		}
	}
	return nil
}

// getSmalls reads n keys from i on, as small structs.
func getSmalls(c *cache.Cache, i, n int) error {
	for end := i + n; i < end; i++ {
		var v small
		if found, err := c.Get(ctx, keys[i&mask], &v); !found || err != nil {
			return fmt.Errorf("Get %s: found %v, err %v", keys[i&mask], found, err)
		}
	}
	return nil
}

var eventValues = []struct {
	name  string
	value func(int) any
	get   func(c *cache.Cache, i, n int) error
}{
	{"string", stringValue, getStrings},
	{"small-struct", smallValue, getSmalls},
}

// BenchmarkEvents is a memory Get hit in each setup, serial and parallel.
func BenchmarkEvents(b *testing.B) {
	for _, val := range eventValues {
		for _, setup := range eventSetups {
			b.Run("value="+val.name+"/setup="+setup, func(b *testing.B) {
				c, sub := newEventsCache(b, setup, val.value)
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					if err := val.get(c, i, 1); err != nil {
						b.Fatal(err)
					}
					i++
				}
				reportDropped(b, sub, b.N)
			})
			b.Run("value="+val.name+"/setup="+setup+"/parallel", func(b *testing.B) {
				c, sub := newEventsCache(b, setup, val.value)
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					i := start()
					for pb.Next() {
						if err := val.get(c, i, 1); err != nil {
							b.Fatal(err)
						}
						i++
					}
				})
				reportDropped(b, sub, b.N)
			})
		}
	}
}

// reportDropped reports the share of the events that sub dropped, in percent.
func reportDropped(b *testing.B, sub func() int64, events int) {
	if sub == nil || events == 0 {
		return
	}
	b.ReportMetric(100*float64(sub())/float64(events), "dropped-pct")
}

// eventsBatch is how many Gets each setup runs per turn in BenchmarkEventsInterleaved:
// enough that the clock reads around a turn cost nothing, few enough that the setups
// take many turns a second.
const eventsBatch = 4096

// BenchmarkEventsInterleaved runs the four setups in turns, serially and with one
// goroutine per CPU, and reports each setup's time per Get (ns/<setup>) and its
// overhead over none in percent (pct-<setup>). Its ns/op is 0: read the metrics.
func BenchmarkEventsInterleaved(b *testing.B) {
	for _, val := range eventValues {
		for _, par := range []bool{false, true} {
			name := "value=" + val.name
			if par {
				name += "/parallel"
			}
			b.Run(name, func(b *testing.B) {
				caches := make([]*cache.Cache, len(eventSetups))
				subs := make([]func() int64, len(eventSetups))
				for k, setup := range eventSetups {
					caches[k], subs[k] = newEventsCache(b, setup, val.value)
				}
				procs := 1
				if par {
					procs = runtime.GOMAXPROCS(0)
				}
				total := make([]time.Duration, len(eventSetups))
				rounds := 0
				for b.Loop() {
					for j := range eventSetups {
						k := (rounds + j) % len(eventSetups) // a different setup goes first each round
						t := time.Now()
						if err := runBatch(caches[k], val.get, rounds*eventsBatch, procs); err != nil {
							b.Fatal(err)
						}
						total[k] += time.Since(t)
					}
					rounds++
				}
				gets := float64(rounds * eventsBatch)
				b.ReportMetric(0, "ns/op")
				for k, setup := range eventSetups {
					b.ReportMetric(float64(total[k])/gets, "ns/"+setup)
					if k > 0 {
						b.ReportMetric(100*(float64(total[k])/float64(total[0])-1), "pct-"+setup)
					}
				}
				for k, sub := range subs {
					if sub != nil && eventSetups[k] == "all" {
						b.ReportMetric(100*float64(sub())/gets, "dropped-pct")
					}
				}
			})
		}
	}
}

// runBatch runs eventsBatch Gets from key i on, split over procs goroutines.
func runBatch(c *cache.Cache, get func(*cache.Cache, int, int) error, i, procs int) error {
	if procs == 1 {
		return get(c, i, eventsBatch)
	}
	var wg sync.WaitGroup
	errs := make([]error, procs)
	per := eventsBatch / procs
	for p := range procs {
		wg.Go(func() { errs[p] = get(c, i+p*257, per) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
