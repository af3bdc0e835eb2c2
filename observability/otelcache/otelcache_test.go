package otelcache_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/cachekit/cache"
	"github.com/cachekit/cache/drivers/memorycache"
	"github.com/cachekit/cache/observability/otelcache"
)

func newCache(t *testing.T, metrics bool) *cache.Cache {
	t.Helper()
	mem, err := memorycache.New(memorycache.Options{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := cache.New(cache.Config{Drivers: map[string]cache.Driver{"mem": mem}, Metrics: metrics})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// collect reads every metric once, by name, then by its attributes.
func collect(t *testing.T, r *sdkmetric.ManualReader) map[string]map[attribute.Distinct]float64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	out := map[string]map[attribute.Distinct]float64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			pts := map[attribute.Distinct]float64{}
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				if !d.IsMonotonic || d.Temporality != metricdata.CumulativeTemporality {
					t.Errorf("%s: not a cumulative monotonic sum", m.Name)
				}
				for _, p := range d.DataPoints {
					pts[p.Attributes.Equivalent()] = float64(p.Value)
				}
			case metricdata.Gauge[float64]:
				for _, p := range d.DataPoints {
					pts[p.Attributes.Equivalent()] = p.Value
				}
			default:
				t.Errorf("%s: unexpected data %T", m.Name, m.Data)
			}
			out[m.Name] = pts
		}
	}
	return out
}

func set(kv ...attribute.KeyValue) attribute.Distinct {
	s := attribute.NewSet(kv...)
	return s.Equivalent()
}

func TestRegister(t *testing.T) {
	c := newCache(t, true)
	ctx := context.Background()
	reader := sdkmetric.NewManualReader()
	provider := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = provider.Shutdown(context.Background()) })
	reg, err := otelcache.Register(c, provider.Meter("test"))
	if err != nil {
		t.Fatal(err)
	}

	_ = c.Set(ctx, "k", "v", time.Minute)
	var s string
	for range 2000 { // latency is sampled at random on about one call in 64
		_, _ = c.Get(ctx, "k", &s)
	}
	_, _ = c.Get(ctx, "nope", &s)
	_, _ = c.Get(ctx, "k", new(int)) // an error
	h, err := cache.Acquire(ctx, c, "lock.a", cache.LockOptions{TTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cache.Acquire(ctx, c, "lock.a", cache.LockOptions{TTL: time.Minute}); !errors.Is(err, cache.ErrNotAcquired) {
		t.Fatal(err)
	}
	_ = h.Release(ctx)

	got := collect(t, reader)
	mem := set(attribute.String("driver", "mem"))
	for name, want := range map[string]float64{
		"cache.hits": 2000, "cache.misses": 1, "cache.sets": 1, "cache.removes": 0,
		"cache.lock.acquired": 1, "cache.lock.contended": 1, "cache.lock.released": 1, "cache.lock.lost": 0,
		"cache.expired": 0, "cache.near.hits": 0, "cache.failed_open": 0,
	} {
		if v, ok := got[name][mem]; !ok || v != want {
			t.Errorf("%s{driver=mem} = %v (present %v); want %v", name, v, ok, want)
		}
	}
	if v := got["cache.errors"][set(attribute.String("driver", "mem"), attribute.String("op", "Get"))]; v != 1 {
		t.Errorf("cache.errors{mem, Get} = %v; want 1", v)
	}
	for _, q := range []string{"0.5", "0.95", "0.99"} {
		a := set(attribute.String("driver", "mem"), attribute.String("op", "Get"), attribute.String("quantile", q))
		if v, ok := got["cache.operation.duration"][a]; !ok || v <= 0 || v > 1 {
			t.Errorf("cache.operation.duration{mem, Get, %s} = %v (present %v)", q, v, ok)
		}
	}
	if v := got["cache.operation.samples"][set(attribute.String("driver", "mem"), attribute.String("op", "Get"))]; v < 1 {
		t.Errorf("Get samples = %v", v)
	}

	// After Unregister, the callback is not called again.
	if err := reg.Unregister(); err != nil {
		t.Fatal(err)
	}
	_, _ = c.Get(ctx, "k", &s)
	if got := collect(t, reader); len(got["cache.hits"]) != 0 {
		t.Errorf("after Unregister: %v", got["cache.hits"])
	}
}

func TestTrace(t *testing.T) {
	c := newCache(t, false)
	ctx := context.Background()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	sub := otelcache.Trace(c, tp.Tracer("test"))

	_ = c.Set(ctx, "k", "v", time.Minute) // no span
	_, _ = c.Get(ctx, "k", new(string))   // no span
	_, _ = c.Get(ctx, "k", new(int))      // error
	_, _ = cache.Lock(ctx, c, "lock.job", time.Minute, func(context.Context) (int, error) { return 0, nil })
	sub()

	spans := rec.Ended()
	want := []struct{ name, event string }{
		{"cache.Get", "error"}, {"cache.Lock", "lock.acquired"}, {"cache.Release", "lock.released"},
	}
	if len(spans) != len(want) {
		t.Fatalf("%d spans; want %d", len(spans), len(want))
	}
	for i, w := range want {
		sp := spans[i]
		attrs := attribute.NewSet(sp.Attributes()...)
		if ev, _ := attrs.Value("cache.event"); sp.Name() != w.name || ev.AsString() != w.event {
			t.Errorf("span %d = %s %v; want %s with cache.event %s", i, sp.Name(), sp.Attributes(), w.name, w.event)
		}
		if d, _ := attrs.Value("cache.driver"); d.AsString() != "mem" {
			t.Errorf("span %d driver = %v", i, d)
		}
		if !sp.StartTime().Equal(sp.EndTime()) || sp.StartTime().IsZero() {
			t.Errorf("span %d runs %v..%v; want zero duration at the event", i, sp.StartTime(), sp.EndTime())
		}
		if sp.Parent().IsValid() {
			t.Errorf("span %d has a parent", i)
		}
	}
	if spans[0].Status().Code != codes.Error || len(spans[0].Events()) != 2 { // the kind and the recorded error
		t.Errorf("error span: status %v, events %v", spans[0].Status(), spans[0].Events())
	}
	lockAttrs := attribute.NewSet(spans[1].Attributes()...)
	if k, _ := lockAttrs.Value("cache.key"); k.AsString() != "lock.job" {
		t.Errorf("lock span key = %v", k)
	}
}

// TestRegisterMetricsOff: a cache without metrics would observe nothing; Register says
// what to set instead, and creates no instrument.
func TestRegisterMetricsOff(t *testing.T) {
	c := newCache(t, false)
	reader := sdkmetric.NewManualReader()
	provider := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = provider.Shutdown(context.Background()) })
	reg, err := otelcache.Register(c, provider.Meter("test"))
	if !errors.Is(err, otelcache.ErrMetricsOff) || reg != nil {
		t.Fatalf("Register of a cache without metrics = %v, %v; want ErrMetricsOff", reg, err)
	}
	for _, want := range []string{"cache metrics are off", "cache.Config.Metrics", "CACHE_METRICS=true", "registry.FromEnv"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q; want it to say %q", err, want)
		}
	}
	if got := collect(t, reader); len(got) != 0 {
		t.Errorf("instruments created for a refused cache: %v", got)
	}
	if _, err := otelcache.Register(nil, provider.Meter("test")); err == nil {
		t.Error("Register(nil) = nil error")
	}
}
