package rediscache

import "github.com/redis/go-redis/v9"

// LockClientOf is the client d runs lock upkeep on (a release, a renewal): for tests
// that count what it sends or dials.
func LockClientOf(d *Driver) redis.UniversalClient { return d.lockc }
