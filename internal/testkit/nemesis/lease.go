package nemesis

import (
	"context"
	"time"

	"github.com/cachekit/cache"
)

// leaseValidUntil is the holder's lease clock inside fn: the instant until which the
// lock is proven held (cache.HeldLock(ctx).ValidUntil()).
func leaseValidUntil(ctx context.Context) (time.Time, bool) {
	h := cache.HeldLock(ctx)
	return h.ValidUntil(), h != nil
}
