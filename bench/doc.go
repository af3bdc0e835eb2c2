// Package bench compares cachekit with the libraries it is built on or competes with,
// side by side in one go test -bench run: raw ristretto v2, otter v2 and golang-lru v2
// beside cachekit's manager over its in-process drivers; on one local redis-server, the
// Redis lock beside bsm/redislock, go-redsync/redsync and the raw floor of a lock (SET NX
// + DEL through go-redis), and Get and Set through the manager beside raw go-redis; the
// file driver. It also measures how ristretto handles writes (correctness_test.go),
// which is why the memory driver is built on otter, and the lock's handoff latency on
// Redis against the peers' retry settings (redis_handoff_test.go).
//
// It is a module of its own, so that the peers are never dependencies of the library.
// docs/benchmarks.md has the commands, the numbers and how to read them.
package bench
