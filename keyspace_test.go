package cache_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cachekit/cache"
	"github.com/cachekit/cache/driver"
	"github.com/cachekit/cache/drivers/memorycache"
	ks "github.com/cachekit/cache/internal/testkit/keyspacetest"
)

// tenantKey carries the tenant a test's PrefixFunc returns.
type tenantKey struct{}

func tenantCtx(t testing.TB, tenant string) context.Context {
	return context.WithValue(ctxT(t), tenantKey{}, tenant)
}

func tenantPrefix(ctx context.Context) string { s, _ := ctx.Value(tenantKey{}).(string); return s }

// storedKeys lists every key the driver holds, sorted.
func storedKeys(t testing.TB, d driver.KeySpace) []string { t.Helper(); return ks.StoredKeys(t, d) }

func newMem(t testing.TB) *memorycache.Driver {
	t.Helper()
	d, err := memorycache.New(memorycache.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() }) // a no-op when a cache closed it
	return d
}

// A tenant whose id extends another's with a dot ("acme" and "acme.eu") would read and
// flush the other's keys: such a prefix is refused, before anything is touched.
func TestPrefixFuncRefusesNestingPrefixes(t *testing.T) {
	mem := newMem(t)
	c := newCache(t, cache.Config{Drivers: map[string]cache.Driver{"m": mem}, PrefixFunc: tenantPrefix})
	acme, eu := tenantCtx(t, "acme"), tenantCtx(t, "acme.eu")
	if err := c.Set(acme, "public", "acme's", time.Minute); err != nil {
		t.Fatal(err)
	}
	err := c.Set(eu, "secret", "acme.eu's", time.Minute)
	if !errors.Is(err, cache.ErrInvalidKey) || !errors.Is(err, cache.ErrInvalidConfig) || !strings.Contains(err.Error(), `"acme.eu"`) {
		t.Fatalf(`Set through the prefix "acme.eu" = %v; want an error naming the prefix, matching ErrInvalidKey and ErrInvalidConfig`, err)
	}
	if got := storedKeys(t, mem); !slices.Equal(got, []string{"acme.public"}) {
		t.Fatalf("the store holds %q; want only acme.public", got)
	}
	var s string
	if found, err := c.Get(acme, "eu.secret", &s); found || err != nil {
		t.Fatalf(`tenant acme reads "eu.secret": %q, %v, %v`, s, found, err)
	}
	// Every keyed call, Flush and the tags refuse the prefix too, and touch nothing.
	for name, call := range map[string]func(ctx context.Context) error{
		"Get":             func(ctx context.Context) error { _, err := c.Get(ctx, "k", &s); return err },
		"Flush":           func(ctx context.Context) error { return c.Flush(ctx) },
		"RemoveNamespace": func(ctx context.Context) error { return c.RemoveNamespace(ctx, "ns") },
		"Remember": func(ctx context.Context) error {
			_, err := cache.Remember(ctx, c, "k", time.Minute, func(context.Context) (int, error) { return 1, nil })
			return err
		},
		"InvalidateTags": func(ctx context.Context) error { return c.InvalidateTags(ctx, "t") },
		"Scan":           func(ctx context.Context) error { return c.Scan(ctx, "", func(string) bool { return true }) },
	} {
		for _, p := range []string{"acme.eu", "", ".acme", "acme.", "a|b"} {
			if err := call(tenantCtx(t, p)); !errors.Is(err, cache.ErrInvalidKey) {
				t.Errorf("%s with the prefix %q = %v; want ErrInvalidKey", name, p, err)
			}
		}
	}
	if got := storedKeys(t, mem); !slices.Equal(got, []string{"acme.public"}) {
		t.Fatalf("the store holds %q after the refused calls; want only acme.public", got)
	}
}

func TestStaticPrefixRules(t *testing.T) {
	for _, p := range []string{"example.com", "example.com.au", "a|b", ".a.b."} {
		if _, err := cache.New(cache.Config{Drivers: map[string]cache.Driver{"m": newMem(t)}, Prefix: p}); !errors.Is(err, cache.ErrInvalidConfig) || !strings.Contains(err.Error(), fmt.Sprintf("%q", p)) {
			t.Errorf("New with Prefix %q = %v; want ErrInvalidConfig naming the prefix", p, err)
		}
	}
	// Leading and trailing dots of a static prefix are trimmed, as before.
	mem := newMem(t)
	c := newCache(t, cache.Config{Drivers: map[string]cache.Driver{"m": mem}, Prefix: ".billing."})
	if err := c.Set(ctxT(t), "k", 1, time.Minute); err != nil {
		t.Fatal(err)
	}
	if got := storedKeys(t, mem); !slices.Equal(got, []string{"billing.k"}) {
		t.Fatalf("the store holds %q; want billing.k", got)
	}
}

// scanners maps each cache made by newScannable to its driver.
var scanners sync.Map

func scannerOf(t *testing.T, c *cache.Cache) driver.KeySpace {
	t.Helper()
	if d, ok := scanners.Load(c); ok {
		return d.(driver.KeySpace)
	}
	t.Fatal("the cache was not made by newScannable")
	return nil
}

// newScannable returns a cache over a fresh memory driver (with cfg's prefixes), and the
// driver.
func newScannable(t *testing.T, cfg cache.Config) (*cache.Cache, *memorycache.Driver) {
	t.Helper()
	mem := newMem(t)
	cfg.Drivers = map[string]cache.Driver{"m": mem}
	c := newCache(t, cfg)
	scanners.Store(c, mem)
	t.Cleanup(func() { scanners.Delete(c) })
	return c, mem
}

func TestPrefixAndNamespaceKeys(t *testing.T) {
	mem, _ := memorycache.New(memorycache.Options{})
	c := newCache(t, cache.Config{Drivers: map[string]cache.Driver{"memory": mem}, Prefix: "billing."})
	raw, err := cache.New(cache.Config{Drivers: map[string]cache.Driver{"memory": mem}}) // same driver, no prefix
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t)
	users := c.Namespace("users")
	if err := users.Namespace("admins").Set(ctx, "1", "Ada", time.Minute); err != nil {
		t.Fatal(err)
	}
	var s string
	if found, _ := raw.Get(ctx, "billing.users.admins.1", &s); !found || s != "Ada" {
		t.Fatalf("the stored key is not billing.users.admins.1 (got %q, %v)", s, found)
	}
	if found, _ := c.Get(ctx, "users.admins.1", &s); !found {
		t.Fatal("a Namespace key is not the dotted key of its parent")
	}
	if got := c.Namespace(""); got != c {
		t.Fatal("Namespace(\"\") is not c itself")
	}
	if err := c.RemoveNamespace(ctx, ""); !errors.Is(err, cache.ErrInvalidKey) {
		t.Fatalf("RemoveNamespace(\"\") = %v; want ErrInvalidKey", err)
	}
	if err := users.RemoveNamespace(ctx, "admins"); err != nil {
		t.Fatal(err)
	}
	if found, _ := raw.Has(ctx, "billing.users.admins.1"); found {
		t.Fatal("RemoveNamespace on a Namespace view did not scope its argument")
	}
}

func TestPrefixFuncPerCall(t *testing.T) {
	type tenantKey struct{}
	c := newCache(t, cache.Config{Prefix: "ignored", PrefixFunc: func(ctx context.Context) string {
		s, _ := ctx.Value(tenantKey{}).(string)
		return s
	}})
	a := context.WithValue(ctxT(t), tenantKey{}, "tenantA")
	b := context.WithValue(ctxT(t), tenantKey{}, "tenantB")
	if err := c.Set(a, "k", "A", time.Minute); err != nil {
		t.Fatal(err)
	}
	var s string
	if found, _ := c.Get(b, "k", &s); found {
		t.Fatal("tenant B sees tenant A's key")
	}
	if found, _ := c.Get(a, "k", &s); !found || s != "A" {
		t.Fatal("tenant A lost its key")
	}
	if err := c.Flush(b); err != nil {
		t.Fatal(err)
	}
	if found, _ := c.Get(a, "k", &s); !found {
		t.Fatal("tenant B's Flush removed tenant A's key")
	}
}
