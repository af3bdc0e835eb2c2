// Package slogcache logs a cache's events with log/slog.
//
//	stop := slogcache.Subscribe(c, slog.Default(), slog.LevelDebug)
//	defer stop()
//
// Each [cache.Event] becomes one record, with the message "cache <kind>" ("cache hit",
// "cache lock.acquired") and the attributes kind, op, driver, key and, for errors and
// lost locks, err. The record's time is the event's. Errors (cache.EventError) and lost
// locks (cache.EventLockLost) are logged at slog.LevelError when that is above level;
// every other event at level.
//
// # Repeated errors
//
// During an outage every call fails the same way, and a line per failure says nothing
// the first one did not. By default, errors that repeat (the same operation, driver and
// kind of error: the type and text of the innermost cause, so "connection refused" on
// two keys is one kind) are collapsed: the first is logged at once; the others within
// [DefaultCollapse] (a minute) are counted, and when that interval ends one record
// stands for them: the last of them, with the attributes repeated (how many) and
// interval. If errors of that kind went on, the next interval collapses them the same
// way; if not, the next one is logged at once again. So an outage logs two records
// per operation, driver and error kind in its first minute, and one a minute after,
// however many calls fail. [Options].Collapse sets the interval, or turns this off.
// stop logs the pending counts.
//
// The records are written by the subscription's goroutine, never by the cache call
// (and a collapsed interval's record by a timer's): a slow handler delays the log, not
// the cache, and when the subscription's buffer (1024 events) is full, events are
// dropped and counted: stop returns how many. Hits and misses are events too, so on a
// busy cache pass the kinds you want to log: with slogcache.Subscribe(c, l, level,
// cache.EventError, cache.EventLockLost) a hit or a miss costs the cache call one
// atomic load and nothing else. A record the handler would not log costs one Enabled
// call, on the subscription's goroutine.
//
// # Beyond events
//
// [LogFindings] logs the findings of a driver's checks at start (the drivers' Options
// CheckOnStart). [RedisLogger] routes go-redis's own log lines (one per failed dial
// during an outage) to a slog.Logger, collapsed the same way.
package slogcache

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/cachekit/cache"
	"github.com/cachekit/cache/driver"
)

// DefaultCollapse is the interval over which repeated errors are collapsed into one
// record by default.
const DefaultCollapse = time.Minute

// Options configure [SubscribeWith].
type Options struct {
	// Level is the level of the records; errors and lost locks are logged at
	// slog.LevelError when that is above it. Default: slog.LevelInfo.
	Level slog.Level
	// Kinds are the event kinds to log. Default: none, every kind.
	Kinds []cache.EventKind
	// Collapse is the interval over which repeated errors are collapsed (see the
	// package doc). Default: 0, [DefaultCollapse]; a negative interval logs every
	// error.
	Collapse time.Duration
}

// Subscribe logs the events of c (of every driver of its manager) of the given kinds
// (every kind when none is given) to l (nil: slog.Default()) until the subscription is
// stopped or c is closed, collapsing repeated errors over [DefaultCollapse]. stop
// stops the subscription, as [cache.Cache.Subscribe]'s does, logs what is pending, and
// returns how many events were dropped.
func Subscribe(c *cache.Cache, l *slog.Logger, level slog.Level, kinds ...cache.EventKind) (stop func() (dropped int64)) {
	return SubscribeWith(c, l, Options{Level: level, Kinds: kinds})
}

// SubscribeWith is [Subscribe] with [Options].
func SubscribeWith(c *cache.Cache, l *slog.Logger, o Options) (stop func() (dropped int64)) {
	if l == nil {
		l = slog.Default()
	}
	h := l.Handler()
	ctx := context.Background()
	col := newCollapser(o.Collapse, func(r slog.Record) { _ = h.Handle(ctx, r) })
	unsubscribe := c.Subscribe(0, func(e cache.Event) {
		lvl := o.Level
		if (e.Kind == cache.EventError || e.Kind == cache.EventLockLost) && lvl < slog.LevelError {
			lvl = slog.LevelError
		}
		if !h.Enabled(ctx, lvl) {
			return
		}
		kind := e.Kind.String()
		r := slog.NewRecord(e.Time, lvl, "cache "+kind, 0)
		r.AddAttrs(
			slog.String("kind", kind),
			slog.String("op", e.Op),
			slog.String("driver", e.Driver),
			slog.String("key", e.Key),
		)
		if e.Err != nil {
			r.AddAttrs(slog.Any("err", e.Err))
		}
		if e.Kind != cache.EventError {
			_ = h.Handle(ctx, r)
			return
		}
		col.log(e.Op+"\x00"+e.Driver+"\x00"+errorKind(e.Err), r)
	}, o.Kinds...)
	return func() int64 {
		n := unsubscribe()
		col.stop()
		return n
	}
}

// errorKind names what kind of error err is: the type and text of its innermost cause
// (the first one of a joined error), which leaves out the operation and key the
// wrappers add.
func errorKind(err error) string {
	for err != nil {
		var next error
		switch u := err.(type) {
		case interface{ Unwrap() error }:
			next = u.Unwrap()
		case interface{ Unwrap() []error }:
			if es := u.Unwrap(); len(es) > 0 {
				next = es[0]
			}
		}
		if next == nil {
			break
		}
		err = next
	}
	if err == nil {
		return ""
	}
	return fmt.Sprintf("%T: %v", err, err)
}

// LogFindings returns a function for a driver's Options.CheckOnStart that logs each
// finding to l (nil: slog.Default()): a warning at slog.LevelWarn, an error at
// slog.LevelError, with the message "cache check" and the attributes check, severity,
// message and fix. Add the driver's name with l.With("driver", name).
//
//	rediscache.Options{URL: url, CheckOnStart: slogcache.LogFindings(slog.Default().With("driver", "redis"))}
func LogFindings(l *slog.Logger) func(driver.Finding) {
	if l == nil {
		l = slog.Default()
	}
	return func(f driver.Finding) {
		lvl := slog.LevelWarn
		if f.Severity >= driver.SeverityError {
			lvl = slog.LevelError
		}
		l.LogAttrs(context.Background(), lvl, "cache check",
			slog.String("check", f.Check), slog.String("severity", f.Severity.String()),
			slog.String("message", f.Message), slog.String("fix", f.Fix))
	}
}
