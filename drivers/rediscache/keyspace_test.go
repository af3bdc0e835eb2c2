package rediscache_test

import (
	"testing"

	"github.com/cachekit/cache/drivers/rediscache"
	ks "github.com/cachekit/cache/internal/testkit/keyspacetest"
	"github.com/cachekit/cache/internal/testkit/redistest"
)

// TestKeySpace runs the key-space property of the root package's FuzzKeySpace
// (internal/testkit/keyspacetest, on its adversarial triples) on a Redis of its own, which
// starts empty: prefixes never nest, records never take an application key's name,
// Flush and RemoveNamespace stay in their scope.
func TestKeySpace(t *testing.T) {
	srv := redistest.Start(t)
	d := newDriver(t, rediscache.Options{URL: srv.URL(), OwnsDatabase: true}) // a server of its own: Flush without a prefix may empty it
	for _, tc := range ks.Cases {
		for _, funcPrefix := range []bool{false, true} {
			ks.Check(t, ks.NewStore(t, d), funcPrefix, tc[0], tc[1])
		}
	}
}
