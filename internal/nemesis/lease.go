package nemesis

import (
	"context"
	"time"

	"github.com/cachekit/cache"
)

// leaseValidUntil is the holder's lease clock inside fn: the instant until which the
// lock is proven held (cache.LockValidUntil).
func leaseValidUntil(ctx context.Context) (time.Time, bool) { return cache.LockValidUntil(ctx) }
