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
	o := Options{
		DefaultTTL:      q.Duration("ttl"),
		Table:           q.Take("table"),
		Unlogged:        q.Bool("unlogged"),
		SkipCreateTable: q.Bool("skip_create_table"),
		SweepInterval:   q.Duration("sweep"),
		SweepBatch:      q.Int("sweep_batch"),
	}
	if err := q.Err(); err != nil {
		return nil, err
	}
	o.URL = q.Rest(u) // pgx checks the rest (sslmode, pool_max_conns, ...) itself
	return New(o)
}
