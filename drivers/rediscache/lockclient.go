package rediscache

import (
	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// lockClient returns the client that lock upkeep uses (Extend, a lock's renewal, and
// CompareAndDelete, its release), and whether the driver built it (and so closes it).
//
// A renewal must answer within one renewal interval, and an answer of "Redis cannot be
// reached" is an answer: fn's ctx is then cancelled with ErrLockLost. go-redis's defaults
// are made for the opposite: a command whose server is down redials DialerRetries (5)
// times, 100 ms apart, until its context runs out, so a renewal against a stopped Redis
// would fail only at its own timeout, one interval late, and a release would hold up
// Lock's return for the whole redial loop. The lock client is a copy of c's options that
// dials once, on a pool of its own (its commands, writes, are never sent twice: see
// noRetry): against a stopped Redis a renewal or release fails in about a millisecond, and
// lock upkeep never queues behind the application's commands in a busy pool. A release
// that fails leaves the lock to its TTL, which is safe. The client is built from
// c.Options(), so it has c's address, credentials, TLS and database, but not hooks
// added to c with AddHook.
//
// The copy always has ContextTimeoutEnabled set, whatever c has: a renewal's context
// deadline (a third of the lock's TTL) then bounds every network wait, so a renewal
// through a connection that stops answering (a frozen Redis, a half-open TCP
// connection) fails at its deadline rather than after c's ReadTimeout (3 s by default)
// and its retries, which can be longer than the lock's TTL.
//
// Other clients are used as they are: a Sentinel client (a copy would not be told of a
// failover, and would keep renewing on the old master), a Cluster client with its own
// ClusterSlots (Sentinel-backed, or custom), a Ring. On those, what bounds a renewal or
// a release is the client's own settings: with ContextTimeoutEnabled, the context's
// deadline; without it, the client's ReadTimeout and WriteTimeout for each attempt, times
// its MaxRetries + 1 attempts, with its dial retries on top. Set ContextTimeoutEnabled on
// such a client.
func lockClient(c redis.UniversalClient) (redis.UniversalClient, bool) {
	switch c := c.(type) {
	case *redis.Client:
		if c.Options().Addr == failoverAddr {
			return c, false
		}
		o := *c.Options()
		o.DialerRetries, o.MaxRetries, o.MinRetryBackoff = 1, 1, -1
		o.MinIdleConns = 0
		o.ContextTimeoutEnabled = true
		// Per-client machinery that c has set up in its options and that a second client
		// must not share (go-redis refuses to register its handlers twice) or need:
		// push-notification processing, maintenance hand-offs, client-side caching.
		o.PushNotificationProcessor = nil
		o.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
		o.ClientSideCache, o.ClientSideCacheConfig = nil, nil
		return redis.NewClient(&o), true
	case *redis.ClusterClient:
		if c.Options().ClusterSlots != nil {
			return c, false
		}
		o := *c.Options()
		// The Cluster client retries a failed command itself (MaxRedirects times, on the
		// same node first, then another): its node clients must not retry on top, each
		// after a backoff of its own (MaxRetries -1).
		o.DialerRetries, o.MaxRetries, o.MinRetryBackoff = 1, -1, -1
		o.MinIdleConns = 0
		o.ContextTimeoutEnabled = true
		o.PushNotificationProcessor = nil
		o.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
		return redis.NewClusterClient(&o), true
	}
	return c, false
}

// failoverAddr is the Addr go-redis gives the options of a Sentinel client
// (redis.NewFailoverClient), whose connections come from its own dialer.
const failoverAddr = "FailoverClient"
