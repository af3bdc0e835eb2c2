// Package faultrun is the machinery that the fault suites internal/testkit/nemesis (the
// distributed lock) and internal/testkit/linearize (linearizability of the atomic
// operations) share: child processes re-executed from the test binary, a harness that
// runs them and breaks things around them, and the files their histories are written
// to. What a child does, what its history says and how it is checked stay in each
// suite; this package knows nothing of locks or registers.
//
// It is a package of its own, rather than one suite exporting its plumbing to the other,
// so that the suites depend on the plumbing and not on each other: a change to the lock
// suite cannot break the linearizability suite, and the reverse.
//
// The pieces:
//
//   - Children ([ChildMain], [Serve], [Store], [OpenCache]): the test binary run again
//     with a job, as JSON, in an environment variable of the suite's. A child says
//     "ready" on stdout once its cache is open, works until its stdin is closed, and
//     exits 0; it exits 1 on an error and 2 on a job it cannot read. Its store dials go
//     through the fault proxies its job routes them to (internal/testkit/faultproxy).
//   - The harness ([Harness]): starts the children, each with fault proxies of its own,
//     applies a random schedule of faults ([Fault]: the children's links, pauses and
//     kills of the children, and whatever the test adds), and at the end stops the
//     children and returns the paths of their history files.
//   - History files ([File], [ReadLines], [ReadFiles]): JSON lines, one write(2) per
//     line on an unbuffered file, so that a child killed with SIGKILL keeps every line it
//     wrote, and a reader that ignores a last line cut short by the kill. Instants are
//     CLOCK_MONOTONIC ([Mono]), comparable across the processes of one host.
//   - Helpers of the suites' tests: [Main], their TestMain; [RequireRedis], a skip
//     outside CI and a failure in CI without redis-server; [PauseListener], a fault
//     that pauses the server process listening on an address ([ListenerPID]);
//     [KillMaster], the failover of a Sentinel group, and [WaitSentinelHealthy], the
//     wait until the group can fail over again; [ClusterNodes].
//
// The package may import testing: only test binaries use it.
package faultrun
