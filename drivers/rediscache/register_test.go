package rediscache

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cachekit/cache/driver"
	"github.com/cachekit/cache/internal/testkit/redistest"
	"github.com/cachekit/cache/registry"
)

// TestRegisterParams: every parameter of the Redis schemes reaches its option, through
// registry.Open as a configuration gives it.
func TestRegisterParams(t *testing.T) {
	base := redistest.URL(t)
	for _, tc := range []struct {
		query string
		check func(d *Driver) bool
	}{
		{"", func(d *Driver) bool {
			return isBatched(d) && d.brk != nil && d.near == nil && d.replicas == 0 && !d.ownsDB && d.defaultTTL == 0
		}},
		{"ttl=5m&owns_database=true", func(d *Driver) bool { return d.defaultTTL == 5*time.Minute && d.ownsDB }},
		{"batch=false", func(d *Driver) bool { return !isBatched(d) }},
		{"batch=true", isBatched},
		{"breaker=false", func(d *Driver) bool { return d.brk == nil }},
		{"breaker=true", func(d *Driver) bool {
			return d.brk != nil && d.brk.cooldown == DefaultBreakerCooldown && d.brk.probeTimeout == DefaultBreakerProbeTimeout
		}},
		{"breaker_cooldown=1s&breaker_probe_timeout=3s", func(d *Driver) bool {
			return d.brk != nil && d.brk.cooldown == time.Second && d.brk.probeTimeout == 3*time.Second
		}},
		{"lock_replicas=2&lock_replicas_timeout=250ms", func(d *Driver) bool {
			return d.replicas == 2 && d.replTimeout == 250*time.Millisecond
		}},
		{"lock_replicas=1", func(d *Driver) bool { return d.replicas == 1 && d.replTimeout == DefaultLockReplicasTimeout }},
		{"near=true", func(d *Driver) bool {
			return d.near != nil && d.near.maxStale == int64(DefaultNearMaxStaleness) && d.near.local.GetMaximum() == DefaultNearMaxEntries
		}},
		{"near=1&near_max_entries=500&near_max_staleness=2s", func(d *Driver) bool {
			return d.near != nil && d.near.maxStale == int64(2*time.Second) && d.near.local.GetMaximum() == 500
		}},
		{"near=true&near_max_age=2s", func(d *Driver) bool {
			return d.near != nil && d.near.maxAge == int64(2*time.Second) && d.near.maxStale == int64(DefaultNearMaxStaleness)
		}},
		{"near=false", func(d *Driver) bool { return d.near == nil }},
		{"near=true&dial_timeout=1s&pool_size=3", func(d *Driver) bool { // the rest goes to go-redis
			c, ok := d.c.(*redis.Client)
			return ok && d.near != nil && c.Options().PoolSize == 3 && c.Options().DialTimeout == time.Second
		}},
	} {
		t.Run(tc.query, func(t *testing.T) {
			u := base
			if tc.query != "" {
				u += "?" + tc.query
			}
			dd, err := registry.Open(u)
			if err != nil {
				t.Fatalf("Open(%q): %v", u, err)
			}
			defer dd.Close()
			if d := dd.(*Driver); !tc.check(d) {
				t.Errorf("Open(%q): the options did not reach the driver", u)
			}
		})
	}
}

// TestRegisterLockReplicas: lock_replicas=1 against a Redis without replicas makes a
// lock's acquisition fail with ErrNotReplicated, and leaves nothing behind.
func TestRegisterLockReplicas(t *testing.T) {
	dd, err := registry.Open(redistest.URL(t) + "?lock_replicas=1&lock_replicas_timeout=20ms")
	if err != nil {
		t.Fatal(err)
	}
	defer dd.Close()
	ctx := context.Background()
	key := "register.lock_replicas." + t.Name()
	ok, err := dd.(driver.Atomic).SetIf(ctx, driver.Entry{Key: key, Value: []byte(`"t"`), TTL: time.Minute}, driver.IfAbsent)
	if ok || !errors.Is(err, ErrNotReplicated) {
		t.Fatalf("SetIf IfAbsent with lock_replicas=1 and no replica = %v, %v; want ErrNotReplicated", ok, err)
	}
	if _, found, err := dd.Get(ctx, key); found || err != nil {
		t.Errorf("after the refused acquisition: found %v, %v; want the write removed", found, err)
	}
}

// TestRegisterReplacesScheme: a program replaces the redis scheme with a factory of its
// own built on OptionsFromURL, which keeps the URL's parameters and adds a codec.
func TestRegisterReplacesScheme(t *testing.T) {
	defer registry.Register("redis", openURL)
	codec := rawCodec{}
	registry.Register("redis", func(u *url.URL, q *registry.Params) (driver.Driver, error) {
		o, err := OptionsFromURL(u, q)
		if err != nil {
			return nil, err
		}
		o.Codec = codec
		return New(o)
	})
	dd, err := registry.Open(redistest.URL(t) + "?ttl=1m&near=true")
	if err != nil {
		t.Fatal(err)
	}
	defer dd.Close()
	d := dd.(*Driver)
	if d.codec != driver.Codec(codec) || d.defaultTTL != time.Minute || d.near == nil {
		t.Errorf("the replacement's driver: codec %T, ttl %v, near %v; want rawCodec, 1m, on", d.codec, d.defaultTTL, d.near != nil)
	}
	if _, err := registry.Open(redistest.URL(t) + "?near=maybe"); err == nil || !strings.Contains(err.Error(), "parameter near") {
		t.Errorf("a bad parameter through the replacement = %v; want it named", err)
	}
}

// rawCodec is a codec of the program's own.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error)   { return driver.JSON.Marshal(v) }
func (rawCodec) Unmarshal(b []byte, v any) error { return driver.JSON.Unmarshal(b, v) }

// TestRegisterParamErrors: a bad value names its parameter; an unknown parameter is
// named, with the driver's own parameters listed.
func TestRegisterParamErrors(t *testing.T) {
	base := redistest.URL(t)
	for _, tc := range []struct {
		query string
		want  []string
	}{
		{"near=bogus", []string{"parameter near", `"bogus"`, "not a boolean"}},
		{"breaker=off", []string{"parameter breaker", `"off"`}},
		{"breaker_cooldown=often", []string{"parameter breaker_cooldown", "not a duration"}},
		{"batch=no", []string{"parameter batch"}},
		{"lock_replicas=-1", []string{"parameter lock_replicas", "non-negative integer"}},
		{"lock_replicas=two", []string{"parameter lock_replicas"}},
		{"near=true&near_max_entries=x", []string{"parameter near_max_entries"}},
		{"near=true&near_max_staleness=soon", []string{"parameter near_max_staleness", "not a duration"}},
		{"near_max_entries=10", []string{"parameter near_max_entries", "add near=true"}},
		{"near_max_staleness=1s", []string{"parameter near_max_staleness", "add near=true"}},
		{"near_max_age=1s", []string{"parameter near_max_age", "add near=true"}},
		{"near=true&near_max_age=later", []string{"parameter near_max_age", "not a duration"}},
		{"bogus=1", []string{"bogus", "near", "breaker", "lock_replicas", "batch", "ttl", "go-redis"}},
	} {
		u := base + "?" + tc.query
		d, err := registry.Open(u)
		if err == nil {
			_ = d.Close()
			t.Errorf("Open(%q): no error", u)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("Open(%q) = %q; want it to name %q", u, err, w)
			}
		}
		if strings.HasPrefix(tc.query, "bogus") {
			continue // go-redis's own error
		}
		if !errors.Is(err, registry.ErrBadURL) {
			t.Errorf("Open(%q) = %v; want ErrBadURL", u, err)
		}
	}
}

// isBatched reports whether d's single-key commands go through the autopipeliner, under
// the breaker or not.
func isBatched(d *Driver) bool {
	p := d.exec
	if g, ok := p.(guarded); ok {
		p = g.p
	}
	_, ok := p.(batched)
	return ok
}
