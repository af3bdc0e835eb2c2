package rediscache

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/cachekit/cache/driver"
	"github.com/cachekit/cache/registry"
)

// Importing the package registers its URL schemes with the registry package, so that
// registry.Open and registry.FromEnv open them:
//
//	import _ "github.com/cachekit/cache/drivers/rediscache"
//
// The driver's own query parameters (see docs/configuration.md) are taken out of the
// URL; the rest go to go-redis (redis.ParseURL, redis.ParseClusterURL).
func init() {
	for _, s := range []string{"redis", "rediss", "unix", "redis+cluster", "rediss+cluster"} {
		registry.Register(s, openURL)
	}
}

// openURL is the registry's factory for the Redis schemes.
func openURL(u *url.URL, q *registry.Params) (driver.Driver, error) {
	o, err := OptionsFromURL(u, q)
	if err != nil {
		return nil, err
	}
	d, err := New(o)
	if err != nil && strings.Contains(err.Error(), "unexpected option") {
		return nil, fmt.Errorf("%w (the driver takes %s; every other parameter goes to go-redis: see redis.ParseURL)", err, strings.Join(q.Known(), ", "))
	}
	return d, err
}

// OptionsFromURL returns the Options a registry URL describes: the driver's own
// parameters, taken from q (ttl, near=true, lock_replicas=1, ...: see
// docs/configuration.md), and Options.URL, u with the other parameters, which go-redis
// checks when New parses it. It is the registry's factory without the call to New, for a
// program that registers a factory of its own for a Redis scheme, to set what a URL
// cannot express:
//
//	registry.Register("redis", func(u *url.URL, q *registry.Params) (cache.Driver, error) {
//		o, err := rediscache.OptionsFromURL(u, q)
//		if err != nil {
//			return nil, err
//		}
//		o.Codec = myCodec
//		return rediscache.New(o)
//	})
func OptionsFromURL(u *url.URL, q *registry.Params) (Options, error) {
	o := Options{
		DefaultTTL:          q.Duration("ttl"),
		OwnsDatabase:        q.Bool("owns_database"),
		LockReplicas:        q.Int("lock_replicas"),
		LockReplicasTimeout: q.Duration("lock_replicas_timeout"),
		NoBatch:             !q.BoolOr("batch", true),
		Breaker: BreakerOptions{
			Off:          !q.BoolOr("breaker", true),
			Cooldown:     q.Duration("breaker_cooldown"),
			ProbeTimeout: q.Duration("breaker_probe_timeout"),
		},
		Near: nearFromURL(q),
	}
	o.URL = q.Rest(u) // go-redis checks the rest of the parameters itself
	return o, q.Err()
}

// nearFromURL reads the near cache's parameters: near=true turns it on, and the
// near_* parameters set its options, which need it on.
func nearFromURL(q *registry.Params) *NearOptions {
	on := q.Bool("near")
	n := &NearOptions{
		MaxEntries:   q.Int("near_max_entries"),
		MaxStaleness: q.Duration("near_max_staleness"),
		MaxAge:       q.Duration("near_max_age"),
	}
	if on {
		return n
	}
	for _, p := range []struct {
		name string
		set  bool
	}{{"near_max_entries", n.MaxEntries != 0}, {"near_max_staleness", n.MaxStaleness != 0}, {"near_max_age", n.MaxAge != 0}} {
		if p.set {
			q.Fail(p.name, errors.New("the near cache is off: add near=true"))
		}
	}
	return nil
}
