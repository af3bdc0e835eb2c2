package nemesis

import (
	"github.com/cachekit/cache/drivers/rediscache"
)

// setLockReplicas sets rediscache.Options.LockReplicas.
func setLockReplicas(o *rediscache.Options, n int) {
	// Temporary: the field is being added to the driver.
	_ = o
	if n > 0 {
		panic("nemesis: rediscache.Options.LockReplicas is not there yet")
	}
}
