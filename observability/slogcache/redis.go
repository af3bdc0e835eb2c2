package slogcache

import (
	"context"
	"fmt"
	"log/slog"
	"time"
)

// RedisLogger returns a logger for go-redis's redis.SetLogger that writes go-redis's
// own log lines to l (nil: slog.Default()) instead of the standard error. go-redis
// logs one line per failed dial and per failed health check of a pooled connection:
// during an outage, one line every few hundred milliseconds per client, on top of the
// cache's errors. Each line becomes a record at slog.LevelWarn with the message
// go-redis formatted and the attribute source="go-redis"; lines from the same place in
// go-redis (the same format) are collapsed over every as [Subscribe] collapses errors
// (0: [DefaultCollapse]; negative: every line is logged):
//
//	redis.SetLogger(slogcache.RedisLogger(slog.Default(), 0))
//
// go-redis's logger is one for the whole process, so this routes the lines of every
// go-redis client, the cache's and any other. The counts of an interval are logged when
// it ends; call [PrintfLogger.Flush] before the process exits to log those still
// pending. To silence the lines instead, use
// logging.Disable() of github.com/redis/go-redis/v9/logging, or
// slogcache.RedisLogger(slog.New(slog.DiscardHandler), -1).
func RedisLogger(l *slog.Logger, every time.Duration) *PrintfLogger {
	if l == nil {
		l = slog.Default()
	}
	h := l.Handler()
	return &PrintfLogger{h: h, col: newCollapser(every, func(r slog.Record) { _ = h.Handle(context.Background(), r) })}
}

// PrintfLogger is what [RedisLogger] returns: a logger with go-redis's Printf method
// that writes to a slog.Logger. Its methods are safe for concurrent use.
type PrintfLogger struct {
	h   slog.Handler
	col *collapser
}

// Printf logs one line of go-redis's.
func (p *PrintfLogger) Printf(ctx context.Context, format string, v ...any) {
	if ctx == nil { // go-redis passes one, but a nil one must not reach the handler
		ctx = context.Background()
	}
	if !p.h.Enabled(ctx, slog.LevelWarn) {
		return
	}
	r := slog.NewRecord(time.Now(), slog.LevelWarn, fmt.Sprintf(format, v...), 0)
	r.AddAttrs(slog.String("source", "go-redis"))
	p.col.log(format, r)
}

// Flush logs the counts of the lines collapsed so far, without waiting for their
// intervals to end: before the process exits, for one.
func (p *PrintfLogger) Flush() { p.col.flush(false) }
