// Package linearize checks the cache's atomic operations for linearizability, Jepsen's
// way: clients run random operations on a few keys while faults break things around
// them, every operation is recorded with the instants of its invocation and of its
// return, and the history is then checked against a sequential model of a key-value
// register with porcupine (github.com/anishathalye/porcupine).
//
// The pieces:
//
//   - The model ([Model]): a register per key, over the operations of package cache:
//     Get, Set, Create and Update (SetWith with OnConflict), a compare-and-swap built
//     on Modify, Increment, Pull and Remove. It is partitioned by key: a history is
//     linearizable if and only if each key's sub-history is.
//   - The history ([Recorder], [ReadHistories]): each client writes its operations as
//     JSON lines to a file of its own, an invocation line before the operation starts
//     and a return line after it ends, with the CLOCK_MONOTONIC time of each
//     (faultrun.Mono), which is comparable across the processes of one host. An
//     operation whose effect is unknown (a timeout, a connection lost, a client killed
//     in the middle of it) is recorded as such: it may have taken effect at any time
//     after its invocation, or never (Jepsen's :info), which porcupine is told by a
//     return at the end of the history and an output the model accepts whatever the
//     state. An operation whose error proves that nothing was done is left out.
//   - The clients ([Client]): a loop of random operations on a cache, run as goroutines
//     for the in-process drivers and as processes (the test binary run again,
//     [ChildMain]) for the drivers that share a store across processes.
//   - The runner ([Harness]): starts the client processes, routes their connections to
//     the store through fault proxies of their own (internal/testkit/faultproxy), and applies a
//     random schedule of faults.
//   - The checker ([Check]).
//
// The child processes, the harness and the history files are internal/testkit/faultrun's,
// which internal/testkit/nemesis shares; this package adds what is the register's: the
// model, the clients' job, the records and the checker.
//
// The keys rotate: every [Job.Epoch] the clients move on to fresh keys. A key's history
// is then a few seconds long, which bounds what an operation of unknown outcome costs the
// checker (porcupine must consider it pending until the end of its key's history).
//
// docs/reliability.md describes what is checked, the faults and the figures of the runs.
//
// The package may import testing: only test binaries use it.
package linearize
