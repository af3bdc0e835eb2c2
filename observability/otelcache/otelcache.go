// Package otelcache exports a cache's metrics and lock events to OpenTelemetry. It is a
// module of its own, so that the cache module does not depend on OpenTelemetry.
//
// # Metrics
//
//	c, err := cache.New(cache.Config{Drivers: drivers, Metrics: true})
//	// or registry.FromEnv() with CACHE_METRICS=true
//	reg, err := otelcache.Register(c, otel.Meter("myapp"))
//	if err != nil {
//		return err // among others, the cache's metrics are off
//	}
//	defer reg.Unregister()
//
// [Register] adds observable instruments read from the cache's metrics snapshot
// ([cache.Cache.Metrics]) at each collection: nothing is added to the cache's calls
// beyond what Config.Metrics costs. A cache built without Config.Metrics counts
// nothing, so Register refuses it with [ErrMetricsOff] rather than observe nothing.
// Counters (attribute driver): cache.hits, cache.misses, cache.sets, cache.removes,
// cache.flushes, cache.errors, cache.lock.acquired, cache.lock.contended,
// cache.lock.released, cache.lock.lost, cache.expired (memory, lru and file drivers;
// Redis does not report expiry). Per driver and timed operation (attributes driver,
// op): the gauge cache.operation.duration in seconds with attribute quantile ("0.5",
// "0.95", "0.99"), and the counter cache.operation.samples. The timed operations are
// those whose latency the cache samples (a driver's [cache.Metrics] Ops: Get, Set,
// Remember, SWR, Once, Lock and others), on about one call in 64, over everything since
// the cache started (not a moving window), within 19% of the true value; the counters
// are cumulative.
//
// # Traces
//
// [Trace] turns lock events and errors into spans. Its limits come from what a
// [cache.Event] carries: no context, so the spans are roots, not children of the
// request's span; no start time, so each span has zero duration, at the moment the
// event happened; and they are delivered by a subscription, asynchronously, and dropped
// when its buffer is full. They mark when locks were taken, contended, released or lost
// and when operations failed, on a timeline; they do not time the cache's calls.
package otelcache

import (
	"context"
	"errors"
	"maps"
	"slices"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/cachekit/cache"
)

type counter struct {
	name, unit, desc string
	get              func(cache.Metrics) int64
}

var counters = []counter{
	{"cache.hits", "{hit}", "Reads that found a value.", func(x cache.Metrics) int64 { return x.Hits }},
	{"cache.misses", "{miss}", "Reads that found no value.", func(x cache.Metrics) int64 { return x.Misses }},
	{"cache.sets", "{write}", "Writes that wrote.", func(x cache.Metrics) int64 { return x.Sets }},
	{"cache.removes", "{key}", "Keys removed (Remove, Pull).", func(x cache.Metrics) int64 { return x.Removes }},
	{"cache.flushes", "{flush}", "Flushes and namespace removals.", func(x cache.Metrics) int64 { return x.Flushes }},
	{"cache.errors", "{error}", "Operations that failed (a miss is not an error).", func(x cache.Metrics) int64 { return x.Errors }},
	{"cache.lock.acquired", "{lock}", "Locks taken.", func(x cache.Metrics) int64 { return x.LockAcquired }},
	{"cache.lock.contended", "{attempt}", "Lock attempts that found the lock held by another holder.", func(x cache.Metrics) int64 { return x.LockContended }},
	{"cache.lock.released", "{lock}", "Locks released by their holder.", func(x cache.Metrics) int64 { return x.LockReleased }},
	{"cache.lock.lost", "{lock}", "Locks that ended while their holder's function ran.", func(x cache.Metrics) int64 { return x.LockLost }},
	{"cache.expired", "{entry}", "Entries the driver dropped because their TTL passed (not reported by Redis).", func(x cache.Metrics) int64 { return x.Expired }},
	{"cache.breaker.opened", "{change}", "Times the driver's circuit breaker opened: its store did not answer.", func(x cache.Metrics) int64 { return x.BreakerOpened }},
	{"cache.breaker.closed", "{change}", "Times the driver's circuit breaker closed: its store answered again.", func(x cache.Metrics) int64 { return x.BreakerClosed }},
	{"cache.failed_open", "{read}", "Reads that failed and were taken as a miss (fail-open).", func(x cache.Metrics) int64 { return x.FailedOpen }},
}

// ErrMetricsOff: the cache was built without metrics, so its instruments would observe
// nothing.
var ErrMetricsOff = errors.New("otelcache: cache metrics are off: set cache.Config.Metrics (or CACHE_METRICS=true with registry.FromEnv)")

// Register creates the cache's instruments on meter and a callback that observes them
// from c's metrics snapshot. Unregister the returned registration to stop. A cache whose
// metrics are off (no Config.Metrics) is refused with [ErrMetricsOff], before anything
// is created on meter.
func Register(c *cache.Cache, meter metric.Meter) (metric.Registration, error) {
	if c == nil {
		return nil, errors.New("otelcache: Register: the cache is nil")
	}
	if c.Metrics().Since.IsZero() { // Since is set when the cache counts
		return nil, ErrMetricsOff
	}
	insts := make([]metric.Int64ObservableCounter, len(counters))
	all := make([]metric.Observable, 0, len(counters)+2)
	for i, ct := range counters {
		inst, err := meter.Int64ObservableCounter(ct.name, metric.WithUnit(ct.unit), metric.WithDescription(ct.desc))
		if err != nil {
			return nil, err
		}
		insts[i] = inst
		all = append(all, inst)
	}
	duration, err := meter.Float64ObservableGauge("cache.operation.duration", metric.WithUnit("s"),
		metric.WithDescription("Sampled latency of an operation: percentiles (quantile 0.5, 0.95, 0.99) since the start."))
	if err != nil {
		return nil, err
	}
	samples, err := meter.Int64ObservableCounter("cache.operation.samples", metric.WithUnit("{sample}"),
		metric.WithDescription("Latency samples taken (about one call in 64)."))
	if err != nil {
		return nil, err
	}
	all = append(all, duration, samples)
	return meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		m := c.Metrics()
		for _, drv := range slices.Sorted(maps.Keys(m.Drivers)) {
			dm := m.Drivers[drv]
			byDriver := metric.WithAttributeSet(attribute.NewSet(attribute.String("driver", drv)))
			for i, ct := range counters {
				o.ObserveInt64(insts[i], ct.get(dm), byDriver)
			}
			for _, op := range slices.Sorted(maps.Keys(dm.Ops)) {
				l := dm.Ops[op]
				if l.Samples == 0 {
					continue
				}
				d, p := attribute.String("driver", drv), attribute.String("op", op)
				o.ObserveInt64(samples, l.Samples, metric.WithAttributes(d, p))
				o.ObserveFloat64(duration, l.P50.Seconds(), metric.WithAttributes(d, p, attribute.String("quantile", "0.5")))
				o.ObserveFloat64(duration, l.P95.Seconds(), metric.WithAttributes(d, p, attribute.String("quantile", "0.95")))
				o.ObserveFloat64(duration, l.P99.Seconds(), metric.WithAttributes(d, p, attribute.String("quantile", "0.99")))
			}
		}
		return nil
	}, all...)
}

// Trace records each lock event (acquired, contended, released, lost) and each error of
// c as a span of tracer: named "cache.<Op>" ("cache.Lock", "cache.Get"), of zero
// duration at the event's time, with the attributes cache.event, cache.op, cache.driver
// and cache.key, an event named after the kind, and for errors the error recorded and
// the status Error. Hits, misses and writes make no span. Call stop to stop; see the package doc for the limits. Keys go to the tracing
// backend as they are. The subscription asks for those kinds only, so hits, misses and
// writes cost the cache's calls nothing.
func Trace(c *cache.Cache, tracer trace.Tracer) (stop func() (dropped int64)) {
	return c.Subscribe(0, func(e cache.Event) {
		at := trace.WithTimestamp(e.Time)
		kind := e.Kind.String()
		_, span := tracer.Start(context.Background(), "cache."+e.Op, at,
			trace.WithSpanKind(trace.SpanKindInternal),
			trace.WithAttributes(
				attribute.String("cache.event", kind),
				attribute.String("cache.op", e.Op),
				attribute.String("cache.driver", e.Driver),
				attribute.String("cache.key", e.Key),
			))
		span.AddEvent(kind, at)
		if e.Err != nil {
			span.RecordError(e.Err, at)
			span.SetStatus(codes.Error, e.Err.Error())
		}
		span.End(at)
	}, cache.EventLockAcquired, cache.EventLockContended, cache.EventLockReleased, cache.EventLockLost, cache.EventError)
}
