package pgcache

import (
	"net/url"

	"github.com/cachekit/cache/driver"
	"github.com/cachekit/cache/registry"
)

// Importing the package registers the postgres and postgresql URL schemes with the
// registry package, so that registry.Open and registry.FromEnv open them:
//
//	import _ "github.com/cachekit/cache/drivers/pgcache"
//
// The driver's own query parameters (see docs/configuration.md) are taken out of the
// URL; the rest go to pgx (sslmode, pool_max_conns, ...).
func init() {
	for _, s := range []string{"postgres", "postgresql"} {
		registry.Register(s, openURL)
	}
}

// openURL is the registry's factory for the PostgreSQL schemes.
func openURL(u *url.URL, q *registry.Params) (driver.Driver, error) {
	o, err := OptionsFromURL(u, q)
	if err != nil {
		return nil, err
	}
	return New(o)
}

// OptionsFromURL returns the Options a registry URL describes: the driver's own
// parameters, taken from q (ttl, table, unlogged, ...: see docs/configuration.md), and
// Options.URL, u with the other parameters, which pgx reads when New parses it
// (sslmode, pool_max_conns, ...). It is the registry's factory without the call to New,
// for a program that registers a factory of its own for the postgres scheme, to set what
// a URL cannot express (a Codec).
func OptionsFromURL(u *url.URL, q *registry.Params) (Options, error) {
	o := Options{
		DefaultTTL:      q.Duration("ttl"),
		Table:           q.Take("table"),
		Unlogged:        q.Bool("unlogged"),
		SkipCreateTable: q.Bool("skip_create_table"),
		SweepInterval:   q.Duration("sweep"),
		SweepBatch:      q.Int("sweep_batch"),
	}
	o.URL = q.Rest(u) // pgx checks the rest (sslmode, pool_max_conns, ...) itself
	return o, q.Err()
}
