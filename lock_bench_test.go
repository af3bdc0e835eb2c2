package cache_test

import (
	"context"
	"testing"
	"time"

	"github.com/cachekit/cache"
)

// BenchmarkLock is an uncontended Lock and release on the memory driver: the manager's
// own cost. bench/ compares it with the peers.
func BenchmarkLock(b *testing.B) {
	c, ctx := newCache(b, cache.Config{}), context.Background()
	fn := func(context.Context) (int, error) { return 1, nil }
	b.ReportAllocs()
	for b.Loop() {
		if out, err := cache.Lock(ctx, c, "lock.bench", time.Minute, fn); err != nil || !out.Acquired {
			b.Fatal(out, err)
		}
	}
}
