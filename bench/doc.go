// Package bench compares cachekit with the libraries it is built on or competes with,
// side by side in one go test -bench run: raw ristretto v2, otter v2 and golang-lru v2,
// and cachekit's manager over its drivers. It also measures how ristretto handles writes
// (correctness_test.go), which is why the memory driver is built on otter.
//
// It is a module of its own, so that the peers are never dependencies of the library.
// docs/benchmarks.md has the command, the numbers and how to read them.
package bench
