// Package nemesis is a fault-injection suite for the distributed lock, Jepsen in
// spirit: several processes contend for a few lock keys while a nemesis breaks the
// network between them and the store, pauses and kills them, and pauses, restarts or
// fails over the store. Every critical section a holder runs is recorded, and a checker
// then counts what must never happen: two holders of one key in their critical sections
// at once (an overlap), and a fencing token that is not greater than the token of an
// earlier section of the same key (tokens out of order).
//
// The pieces:
//
//   - History ([Recorder], [ReadHistory]): each holder process writes its sections as
//     JSON lines to a file of its own, one line per action, with the CLOCK_MONOTONIC time
//     of the action (faultrun.Mono), which is comparable across the processes of one
//     host. Each line is one write(2), so a holder killed with SIGKILL keeps every
//     action it took.
//   - Holders ([ChildMain], [Job]): the test binary run again. A holder loops: it picks
//     a key, takes the lock with random options, and inside fn performs actions, each
//     only after checking its lease clock (cache.HeldLock(ctx).ValidUntil()): a holder acts only
//     while its lease is valid.
//   - The nemesis ([Harness]): starts the holders, routes their connections to the
//     store through fault proxies of their own (internal/testkit/faultproxy), and applies a
//     random schedule of faults.
//   - The checker ([Check]).
//
// The child processes, the harness and the history files are internal/testkit/faultrun's,
// which internal/testkit/linearize shares; this package adds what is the lock's: the
// holders' job, the sections and the checker.
//
// docs/reliability.md describes the fault model and the figures of the runs.
//
// The package may import testing: only test binaries use it.
package nemesis
