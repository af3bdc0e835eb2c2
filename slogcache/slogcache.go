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
// The records are written by the subscription's goroutine, never by the cache call: a
// slow handler delays the log, not the cache, and when the subscription's buffer (1024
// events) is full, events are dropped and counted: stop returns how many.
// Hits and misses are events too, so on a busy cache pass the kinds you want to log:
// with slogcache.Subscribe(c, l, level, cache.EventError, cache.EventLockLost) a hit or
// a miss costs the cache call one atomic load and nothing else. A record the handler
// would not log costs one Enabled call, on the subscription's goroutine.
package slogcache

import (
	"context"
	"log/slog"

	"github.com/cachekit/cache"
)

// Subscribe logs the events of c (of every driver of its manager) of the given kinds
// (every kind when none is given) to l (nil: slog.Default()) until the subscription is
// stopped or c is closed. stop is [cache.Cache.Subscribe]'s: it returns how many events
// were dropped.
func Subscribe(c *cache.Cache, l *slog.Logger, level slog.Level, kinds ...cache.EventKind) (stop func() (dropped int64)) {
	if l == nil {
		l = slog.Default()
	}
	h := l.Handler()
	ctx := context.Background()
	return c.Subscribe(0, func(e cache.Event) {
		lvl := level
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
		_ = h.Handle(ctx, r)
	}, kinds...)
}
