// Package cache is cachekit: a cache manager with named drivers, conditional writes,
// single-flight loading and a lock that runs a function on one holder at a time.
//
// # Concepts
//
// A [Cache] is a manager over a registry of named drivers ([Config].Drivers), one of
// which is current. Every operation runs on the current driver unless it is routed
// elsewhere: [Cache.Use] switches the current driver (safe while other goroutines use the
// cache), [Cache.Driver] returns a view pinned to one driver, and the Driver field of
// [SetOptions] and [LockOptions] routes a single call. [Cache.Namespace] returns a view
// whose keys live under a namespace. Views share the manager's drivers and its Close.
//
// The manager owns what is the same on every driver: the prefix and namespaces, TTL
// rules, encoding, single-flight and the lock protocol. A driver (package
// [github.com/cachekit/cache/driver]) owns storage and its atomic primitives only.
//
// # Quick start
//
//	mem, err := memorycache.New(memorycache.Options{})
//	if err != nil { ... }
//	c, err := cache.New(cache.Config{
//		Drivers: map[string]cache.Driver{"memory": mem},
//		Prefix:  "billing",
//	})
//	if err != nil { ... }
//	defer c.Close()
//
//	err = c.Set(ctx, "user.1", User{ID: 1, Name: "Ada"}, 10*time.Minute)
//	var u User
//	found, err := c.Get(ctx, "user.1", &u) // a miss is found == false, never an error
//
//	u, err = cache.Remember(ctx, c, "user.1", 10*time.Minute, loadUser)
//
//	out, err := cache.Lock(ctx, c, "lock.nightly-import", 10*time.Minute, runImport)
//	if out.Acquired { ... } // else another holder has the lock and runImport did not run
//
// # Drivers
//
// Each driver is a package of its own under drivers/ (in-process ones, one over a shared
// store, one that stores nothing), and package registry opens them from a URL
// ("memory://", "redis://..."). docs/drivers.md lists them: what each stores, how far its
// lock reaches, and which optional capabilities of package driver it implements.
//
// In-process drivers keep the Go values themselves (do not mutate a map, slice or
// pointer after storing it) and their atomic operations, the lock included, hold within
// one process only. Drivers that store bytes implement driver.Encoder and get the
// codec's bytes, JSON by default.
//
// # Keys and TTLs
//
// Keys are non-empty strings. The global prefix ([Config].Prefix, or PrefixFunc per call),
// the namespaces and the key are joined with ".": key "1" in namespace "users" under
// prefix "billing" is stored as "billing.users.1". [Cache.RemoveNamespace] removes
// "users" and every "users.*" key, never "usersX"; [Cache.Flush] with a prefix or on a
// namespace view removes only what is under it. A prefix is one segment: it may not
// contain ".", so that no prefix lies inside another. The character "|" is reserved for
// the records the cache keeps for itself (a key's are "<key>.|<name>", such as the
// negative-caching mark "<key>.|none"): keys, namespaces and prefixes may not hold it,
// so no application key can take a record's name. A key holding data the driver cannot
// read is an error, never a miss, and [Remember], [SWR] and [Once] never overwrite it.
// docs/keys.md has the rules.
//
// A TTL > 0 expires the value after that long. A TTL of 0 means the driver's default TTL
// if it has one, otherwise no expiry. A negative TTL is an error matching
// [ErrInvalidTTL]. [Cache.Forever] never expires, whatever the default. Locks need a
// TTL > 0. [ParseDuration] reads config strings such as "30s", "1.5h", "2 weeks" and
// "1h30m".
//
// # Errors
//
// A miss is never an error. The errors returned wrap a sentinel, matched with errors.Is:
// [ErrInvalidTTL], [ErrInvalidKey], [ErrInvalidConfig], [ErrUnknownDriver], [ErrClosed],
// [ErrNotInteger], and [ErrUnsupported] (errors.ErrUnsupported) when the driver cannot do
// an operation atomically: the cache never emulates one with several non-atomic steps.
// A held lock is not an error: [Lock] returns Acquired == false and a nil error.
package cache
