//go:build !unix

package filecache_test

import (
	"testing"

	"github.com/cachekit/cache/driver"
)

// plantFIFO is nil where there are no named pipes: the suite's foreign-data case skips.
var plantFIFO func(t *testing.T, d driver.Driver, key string)
