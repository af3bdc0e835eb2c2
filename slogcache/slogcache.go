// Package slogcache logs a cache's events with log/slog.
//
//	sub := slogcache.Subscribe(c, slog.Default(), slog.LevelDebug)
//	defer sub.Stop()
//
// Each [cache.Event] becomes one record, with the message "cache <kind>" ("cache hit",
// "cache lock.acquired") and the attributes kind, op, driver, key and, for errors and
// lost locks, err. The record's time is the event's. Errors (cache.EventError) and lost
// locks (cache.EventLockLost) are logged at slog.LevelError when that is above level;
// every other event at level.
//
// The records are written by the subscription's goroutine, never by the cache call: a
// slow handler delays the log, not the cache, and when the subscription's buffer (1024
// events) is full, events are dropped and counted by [cache.Subscription.Dropped].
// Hits and misses are events too, so on a busy cache prefer a level the handler
// filters out in production (Debug), or a subscription of your own that keeps only the
// kinds you want. A record the handler would not log costs one Enabled call.
package slogcache

import (
	"context"
	"log/slog"

	"github.com/cachekit/cache"
)

// Subscribe logs every event of c (of every driver of its manager) to l (nil:
// slog.Default()) until the subscription is stopped or c is closed.
func Subscribe(c *cache.Cache, l *slog.Logger, level slog.Level) *cache.Subscription {
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
	})
}
