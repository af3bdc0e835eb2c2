package slogcache_test

import (
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cachekit/cache"
	"github.com/cachekit/cache/drivers/rediscache"
	"github.com/cachekit/cache/observability/slogcache"
)

// A service on Redis: the cache's errors and go-redis's own lines in one slog logger,
// repeats collapsed, the Redis settings checked at start, and the outages.
func ExampleRedisLogger() {
	logger := slog.Default()
	rl := slogcache.RedisLogger(logger, 0) // go-redis's lines, collapsed over a minute
	redis.SetLogger(rl)                    // once per process, before the first client
	defer rl.Flush()

	rds, err := rediscache.New(rediscache.Options{URL: "redis://127.0.0.1:6379/0"})
	if err != nil {
		logger.Error("cache", "err", err)
		return
	}
	c, err := cache.New(cache.Config{
		Drivers:      map[string]cache.Driver{"redis": rds},
		FailOpen:     true,
		CheckOnStart: true, // the Redis settings' warnings and errors, as finding events
	})
	if err != nil {
		logger.Error("cache", "err", err)
		return
	}
	defer c.Close()
	stop := slogcache.SubscribeWith(c, logger, slogcache.Options{
		Kinds: []cache.EventKind{
			cache.EventError, cache.EventLockLost, cache.EventFinding,
			cache.EventBreakerOpened, cache.EventBreakerClosed,
		},
		Collapse: 30 * time.Second,
	})
	defer stop()
}
