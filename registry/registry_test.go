package registry_test

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/cachekit/cache"
	"github.com/cachekit/cache/driver"
	"github.com/cachekit/cache/drivers/filecache"
	"github.com/cachekit/cache/drivers/lrucache"
	"github.com/cachekit/cache/drivers/memorycache"
	"github.com/cachekit/cache/drivers/nullcache"
	"github.com/cachekit/cache/drivers/rediscache"
	"github.com/cachekit/cache/internal/redistest"
	"github.com/cachekit/cache/registry"
)

func TestMain(m *testing.M) { redistest.Main(m) }

func open(t *testing.T, u string) driver.Driver {
	t.Helper()
	d, err := registry.Open(u)
	if err != nil {
		t.Fatalf("Open(%q): %v", u, err)
	}
	t.Cleanup(func() { _ = d.Close() })
	return d
}

func TestOpenSchemes(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		url  string
		ok   func(driver.Driver) bool
		ttl  time.Duration
		desc string
	}{
		{"memory://", func(d driver.Driver) bool { _, ok := d.(*memorycache.Driver); return ok }, 0, "memory"},
		{"memory://?ttl=10m&sliding=true&max_items=100", func(d driver.Driver) bool { _, ok := d.(*memorycache.Driver); return ok }, 10 * time.Minute, "memoryExtended"},
		{"lru://?capacity=10&ttl=1d", func(d driver.Driver) bool { _, ok := d.(*lrucache.Driver); return ok }, 24 * time.Hour, "lru"},
		{"null://", func(d driver.Driver) bool { _, ok := d.(*nullcache.Driver); return ok }, 0, "null"},
		{"file://" + dir + "?ttl=90&sync=true", func(d driver.Driver) bool { _, ok := d.(*filecache.Driver); return ok }, 90 * time.Second, "file"},
		{redistest.URL(t) + withParam(redistest.URL(t), "ttl=5m"), func(d driver.Driver) bool { _, ok := d.(*rediscache.Driver); return ok }, 5 * time.Minute, "redis"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			d := open(t, tc.url)
			if !tc.ok(d) {
				t.Fatalf("Open(%q) = %T", tc.url, d)
			}
			if dt, ok := d.(driver.DefaultTTLer); ok && dt.DefaultTTL() != tc.ttl {
				t.Fatalf("DefaultTTL = %v; want %v", dt.DefaultTTL(), tc.ttl)
			}
		})
	}
}

func withParam(u, p string) string {
	if strings.Contains(u, "?") {
		return "&" + p
	}
	return "?" + p
}

func TestOpenErrors(t *testing.T) {
	for _, tc := range []struct {
		url  string
		want error
	}{
		{"memcached://127.0.0.1:11211", registry.ErrUnknownScheme},
		{"memory://?bogus=1", registry.ErrBadURL},
		{"memory://?ttl=forever", registry.ErrBadURL},
		{"lru://?capacity=-1", registry.ErrBadURL},
		{"memory://?sliding=perhaps", registry.ErrBadURL},
		{"file://otherhost/var/cache", registry.ErrBadURL},
		{"%%%", registry.ErrBadURL},
	} {
		if _, err := registry.Open(tc.url); !errors.Is(err, tc.want) {
			t.Errorf("Open(%q) = %v; want %v", tc.url, err, tc.want)
		}
	}
}

func TestErrorsNeverShowThePassword(t *testing.T) {
	for _, u := range []string{
		"redis://user:s3cret-pw@127.0.0.1:1/0?bogus=1",
		"redis://user:s3cret-pw@127.0.0.1:1/notanumber",
		"redis://user:s3cret-pw@[::1/0",
		"memory://user:s3cret-pw@x?nope=1",
		"nosuch://user:s3cret-pw@host",
	} {
		_, err := registry.Open(u)
		if err == nil {
			t.Errorf("Open(%q) = nil error", u)
			continue
		}
		if strings.Contains(err.Error(), "s3cret-pw") {
			t.Errorf("Open error shows the password: %v", err)
		}
	}
}

func TestFromLookup(t *testing.T) {
	env := map[string]string{
		"CACHE_DRIVERS": "main=" + redistest.URL(t) + "; local=memory://?ttl=1m\nnull=null://",
		"CACHE_DEFAULT": "local",
		"CACHE_PREFIX":  "svc",
	}
	c, err := registry.FromLookup(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got := c.Drivers(); strings.Join(got, ",") != "local,main,null" || c.Current() != "local" {
		t.Fatalf("drivers %v current %q", got, c.Current())
	}
	ctx := context.Background()
	main, _ := c.Driver("main")
	if err := main.Set(ctx, "k", "v", time.Minute); err != nil {
		t.Fatal(err)
	}
	var s string
	if found, err := main.Get(ctx, "k", &s); !found || err != nil || s != "v" {
		t.Fatal(found, err, s)
	}
	_ = main.Remove(ctx, "k")
	// One URL alone is the default driver.
	c2, err := registry.FromLookup(func(k string) (string, bool) {
		if k == "CACHE_DRIVERS" {
			return "memory://", true
		}
		return "", false
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if c2.Current() != "default" {
		t.Fatalf("Current() = %q", c2.Current())
	}
	if _, err := registry.FromLookup(func(string) (string, bool) { return "", false }); !errors.Is(err, registry.ErrBadURL) {
		t.Fatalf("no CACHE_DRIVERS = %v", err)
	}
	if _, err := registry.New(registry.Config{Drivers: map[string]string{"a": "memory://", "b": "nope://"}}); !errors.Is(err, registry.ErrUnknownScheme) {
		t.Fatalf("a bad driver = %v", err)
	}
}

func TestRegister(t *testing.T) {
	registry.Register("test-null", func(*url.URL, *registry.Params) (cache.Driver, error) { return nullcache.New(nullcache.Options{}) })
	open(t, "test-null://")
	defer func() {
		if recover() == nil {
			t.Fatal("a second Register of a scheme did not panic")
		}
	}()
	registry.Register("test-null", func(*url.URL, *registry.Params) (cache.Driver, error) { return nil, nil })
}
