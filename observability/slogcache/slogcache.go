// Package slogcache logs a cache's events with log/slog.
//
//	stop := slogcache.Subscribe(c, slog.Default(), slog.LevelDebug)
//	defer stop()
//
// Without kinds, it logs [DefaultKinds]: what an operator must see (errors, lost locks,
// the breaker opening and closing, the near tier dropped and restored, the findings of
// the checks at start), and none of the events that every operation makes; so a cache
// under load logs nothing until something goes wrong, and an outage logs a handful of
// lines (see "Repeated errors"). Pass the kinds you want, or [AllKinds], to log more.
//
// Each [cache.Event] becomes one record, with the message "cache <kind>" ("cache hit",
// "cache lock.acquired") and the attributes kind, op, driver, key and, for errors and
// lost locks, err. The record's time is the event's. Every event is logged at the level
// given, or at its kind's own level when that is above it:
//
//   - slog.LevelError: errors (cache.EventError), lost locks (cache.EventLockLost), and
//     the findings of the checks at start (cache.EventFinding, with
//     cache.Config.CheckOnStart) that are errors;
//   - slog.LevelWarn: the findings that are warnings, a circuit breaker that opened
//     (cache.EventBreakerOpened), a near tier that stopped serving its copies
//     (cache.EventNearDropped), and a read taken as a miss under fail-open
//     (cache.EventFailedOpen, when asked for);
//   - slog.LevelInfo: a breaker that closed (cache.EventBreakerClosed), and a near tier
//     that serves its copies again (cache.EventNearRestored).
//
// A finding's record has the check as its key, and the attributes severity, message
// and, when there is one, fix, instead of err.
//
// # Repeated errors
//
// During an outage every call fails the same way, and a line per failure says nothing
// the first one did not. By default, errors (and the reads taken as misses under
// fail-open, when asked for) that repeat (the same kind of event, operation, driver and
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
// dropped and counted: stop returns how many. A kind that is not asked for costs the
// cache call one atomic load and nothing else, which is why the default leaves out
// hits, misses and writes. A record the handler would not log costs one Enabled call,
// on the subscription's goroutine.
//
// # Beyond events
//
// [RedisLogger] routes go-redis's own log lines (one per failed dial during an outage)
// to a slog.Logger, collapsed the same way.
package slogcache

import (
	"context"
	"errors"
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
	// Level is the level of the records; the kinds with a level of their own (errors,
	// lost locks, findings, the near tier's changes: see the package doc) are logged at
	// it when that is above Level. Default: slog.LevelInfo.
	Level slog.Level
	// Kinds are the event kinds to log. Default: none given, [DefaultKinds]; [AllKinds]
	// logs every event, hits and misses included.
	Kinds []cache.EventKind
	// Collapse is the interval over which repeated errors are collapsed (see the
	// package doc). Default: 0, [DefaultCollapse]; a negative interval logs every
	// error.
	Collapse time.Duration
}

// Subscribe logs the events of c (of every driver of its manager) of the given kinds
// ([DefaultKinds] when none is given) to l (nil: slog.Default()) until the subscription is
// stopped or c is closed, collapsing repeated errors over [DefaultCollapse]. stop
// stops the subscription, as [cache.Cache.Subscribe]'s does, logs what is pending, and
// returns how many events were dropped.
func Subscribe(c *cache.Cache, l *slog.Logger, level slog.Level, kinds ...cache.EventKind) (stop func() (dropped int64)) {
	return SubscribeWith(c, l, Options{Level: level, Kinds: kinds})
}

// DefaultKinds returns the kinds that Subscribe logs when none is given: errors, lost
// locks, the circuit breaker's and the near tier's changes, and the findings of the
// checks at start.
func DefaultKinds() []cache.EventKind {
	return []cache.EventKind{cache.EventError, cache.EventLockLost, cache.EventBreakerOpened,
		cache.EventBreakerClosed, cache.EventNearDropped, cache.EventNearRestored, cache.EventFinding}
}

// AllKinds returns every event kind: hits, misses, writes and the lock's events
// included, for a cache whose every operation should be logged (a test, a debugging
// session).
func AllKinds() []cache.EventKind {
	var ks []cache.EventKind
	for k := cache.EventKind(1); k.String() != "unknown"; k++ {
		ks = append(ks, k)
	}
	return ks
}

// SubscribeWith is [Subscribe] with [Options].
func SubscribeWith(c *cache.Cache, l *slog.Logger, o Options) (stop func() (dropped int64)) {
	if l == nil {
		l = slog.Default()
	}
	if len(o.Kinds) == 0 {
		o.Kinds = DefaultKinds()
	}
	h := l.Handler()
	ctx := context.Background()
	col := newCollapser(o.Collapse, func(r slog.Record) { _ = h.Handle(ctx, r) })
	unsubscribe := c.Subscribe(0, func(e cache.Event) {
		lvl := levelOf(e, o.Level)
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
		if f, ok := finding(e); ok {
			r.AddAttrs(slog.String("severity", f.Severity.String()), slog.String("message", f.Message))
			if f.Fix != "" {
				r.AddAttrs(slog.String("fix", f.Fix))
			}
		} else if e.Err != nil {
			r.AddAttrs(slog.Any("err", e.Err))
		}
		if e.Kind != cache.EventError && e.Kind != cache.EventFailedOpen {
			_ = h.Handle(ctx, r)
			return
		}
		col.log(kind+"\x00"+e.Op+"\x00"+e.Driver+"\x00"+errorKind(e.Err), r)
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

// levelOf is the level of e's record: level, or the level of e's kind when that is
// above it (see the package doc).
func levelOf(e cache.Event, level slog.Level) slog.Level {
	floor := level
	switch e.Kind {
	case cache.EventError, cache.EventLockLost:
		floor = slog.LevelError
	case cache.EventFinding:
		floor = slog.LevelWarn
		if f, ok := finding(e); ok && f.Severity >= driver.SeverityError {
			floor = slog.LevelError
		}
	case cache.EventBreakerOpened, cache.EventNearDropped, cache.EventFailedOpen:
		floor = slog.LevelWarn
	case cache.EventBreakerClosed, cache.EventNearRestored:
		floor = slog.LevelInfo
	}
	return max(level, floor)
}

// finding is the driver.Finding of an EventFinding.
func finding(e cache.Event) (driver.Finding, bool) {
	var f driver.Finding
	ok := e.Kind == cache.EventFinding && errors.As(e.Err, &f)
	return f, ok
}
