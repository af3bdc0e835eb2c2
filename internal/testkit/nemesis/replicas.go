package nemesis

import (
	"github.com/cachekit/cache/drivers/rediscache"
)

// setLockReplicas sets rediscache.Options.LockReplicas.
func setLockReplicas(o *rediscache.Options, n int) { o.LockReplicas = n }
