package rediscache

import (
	"context"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/cachekit/cache/internal/wait"
)

// noRetry is a command that go-redis must not send a second time: every write of the
// driver goes through it.
//
// go-redis sends a command again, up to MaxRetries times (3 by default), when its
// connection fails after the command was written (a reset, an EOF, a read timeout).
// For a write that had already run, with only its reply lost, that is a second run: an
// INCRBY counts twice and returns the second sum, a SET NX that wrote reports that it
// did not (the second one finds the value the first wrote), a GETDEL that took the
// value reports a miss, a lock's release or renewal script runs twice. Even a plain SET
// or DEL can be harmed: the first attempt, held up in a connection that stopped
// moving, can reach Redis after the second one was answered, and undo a write that
// another client made in between, after the call had returned.
//
// So the driver's writes (Set, SetMany, SetIf, Delete, Increment, Pull, the list
// pushes and pops, and the compare-and-delete, compare-and-swap, renewal and fencing
// scripts) go to go-redis as noRetry commands: go-redis then returns the connection's
// error, and the caller learns that the outcome is unknown instead of receiving a
// wrong one or having its write land late. A command that go-redis could not write at
// all is still sent again (go-redis tells that case apart), and MOVED, ASK and READONLY
// redirections on a Cluster are still followed: the command did not run. Reads keep
// go-redis's retries: a read that runs twice changes nothing.
//
// go-redis decides per command: a batch (Options.NoBatch off) that holds both kinds is
// split into runs of one kind, and the runs of reads keep their retries. A pipeline of
// writes (SetMany, a Delete over several slots, a write with its WAIT for
// Options.LockReplicas) is not retried.
//
// The driver's own commands get a wrapper of one pointer (see noRetryCmd), which goes
// into an interface without an allocation.
type noRetry struct{ redis.Cmder }

// NoRetry tells go-redis not to send the command again after a failure.
func (noRetry) NoRetry() bool { return true }

// The wrappers of the command types the driver writes with: one pointer each.
type (
	noRetryStatus struct{ *redis.StatusCmd } // SET
	noRetryInt    struct{ *redis.IntCmd }    // INCRBY, DECRBY, DEL, the list pushes
	noRetryString struct{ *redis.StringCmd } // GETDEL, the list pops
	noRetryScript struct{ *redis.Cmd }       // EVALSHA, EVAL
)

func (noRetryStatus) NoRetry() bool { return true }
func (noRetryInt) NoRetry() bool    { return true }
func (noRetryString) NoRetry() bool { return true }
func (noRetryScript) NoRetry() bool { return true }

// isNoRetry reports whether cmd is one that go-redis must not send twice: a write
// (noRetryCmd marks them).
func isNoRetry(cmd redis.Cmder) bool {
	nr, ok := cmd.(interface{ NoRetry() bool })
	return ok && nr.NoRetry()
}

// noRetryCmd is cmd as a command go-redis does not send twice (see noRetry).
func noRetryCmd(cmd redis.Cmder) redis.Cmder {
	switch c := cmd.(type) {
	case *redis.StatusCmd:
		return noRetryStatus{c}
	case *redis.IntCmd:
		return noRetryInt{c}
	case *redis.StringCmd:
		return noRetryString{c}
	case *redis.Cmd:
		return noRetryScript{c}
	}
	return noRetry{cmd}
}

// once is a processor that sends every command as a noRetry.
type once struct{ p processor }

func (o once) Process(ctx context.Context, cmd redis.Cmder) error {
	return ctxFailure(ctx, o.p.Process(ctx, noRetryCmd(cmd)))
}

// sendOnce is d.send of cmd as a noRetry.
func (d *Driver) sendOnce(ctx context.Context, cmd redis.Cmder) error {
	return ctxFailure(ctx, d.send(ctx, noRetryCmd(cmd)))
}

// ctxFailure is err, the outcome of a command sent on ctx, made to match ctx's error
// when the command failed without an answer after ctx ended: go-redis then reports the
// I/O timeout that ctx's deadline set on the connection, where a retry would have
// reported the deadline itself.
func ctxFailure(ctx context.Context, err error) error {
	if err == nil || isAnswer(err) {
		return err
	}
	ended := wait.Ended(ctx) // a deadline whose I/O timeout fired before ctx's timer ran counts
	if ended == nil || errors.Is(err, ended) {
		return err
	}
	return fmt.Errorf("%w (%w)", ended, err)
}
