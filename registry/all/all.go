// Package all registers every driver of this module with the registry package, for
// programs that open any URL (cachectl does):
//
//	import _ "github.com/cachekit/cache/registry/all"
//
// The in-process drivers (memory://, lru://, file://, null://) are built into the
// registry; importing all adds Redis (redis://, rediss://, unix://, redis+cluster://,
// rediss+cluster://, from drivers/rediscache) and PostgreSQL (postgres://, postgresql://,
// from drivers/pgcache), and links go-redis and pgx into the program. A program that
// uses one of them imports that driver's package alone.
package all

import (
	_ "github.com/cachekit/cache/drivers/pgcache"    // postgres://, postgresql://
	_ "github.com/cachekit/cache/drivers/rediscache" // redis://, rediss://, unix://, redis+cluster://, rediss+cluster://
)
