package cache_test

import (
	"testing"

	"github.com/cachekit/cache/drivers/filecache"
	ks "github.com/cachekit/cache/internal/testkit/keyspacetest"
)

// FuzzKeySpace checks the key space on the memory driver, for two (prefix, namespace,
// key) triples, with static prefixes and with a PrefixFunc: each call either is refused
// by the rules (docs/keys.md) or stores its value and records where the rules say; two
// caches with different prefixes never share a key; Flush and RemoveNamespace through one
// cache remove only what lies under their scope, and never a key of another prefix. The
// property is internal/testkit/keyspacetest's, shared with drivers/rediscache.
//
//	go test -run '^$' -fuzz FuzzKeySpace -fuzztime 10m .
func FuzzKeySpace(f *testing.F) {
	f.Fuzz(func(t *testing.T, prefix1, ns1, key1, prefix2, ns2, key2 string) {
		x, y := ks.Triple{Prefix: prefix1, NS: ns1, Key: key1}, ks.Triple{Prefix: prefix2, NS: ns2, Key: key2}
		for _, funcPrefix := range []bool{false, true} {
			ks.Check(t, ks.NewStore(t, newMem(t)), funcPrefix, x, y)
		}
	})
}

// TestKeySpace runs FuzzKeySpace's property on adversarial triples (ks.Cases), on the
// memory and file drivers. (drivers/rediscache's TestKeySpace runs it on Redis.)
func TestKeySpace(t *testing.T) {
	stores := map[string]func(t *testing.T) ks.Store{
		"memory": func(t *testing.T) ks.Store { return ks.NewStore(t, newMem(t)) },
		"file": func(t *testing.T) ks.Store {
			d, err := filecache.New(filecache.Options{Dir: t.TempDir()})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = d.Close() })
			return ks.NewStore(t, d)
		},
	}
	for name, store := range stores {
		t.Run(name, func(t *testing.T) {
			for _, tc := range ks.Cases {
				for _, funcPrefix := range []bool{false, true} {
					ks.Check(t, store(t), funcPrefix, tc[0], tc[1])
				}
			}
		})
	}
}
