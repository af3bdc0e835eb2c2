package rediscache

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// ErrNotReplicated is returned, wrapped, when Options.LockReplicas is set and fewer
// replicas than that acknowledged a lock's write within Options.LockReplicasTimeout: an
// acquisition (a create-if-absent, fenced or not) that then removed what it wrote, or a
// renewal (Extend). It is an error, never "someone else holds the lock": the lock was
// not taken, or, for a renewal, can no longer be counted on to survive a failover.
var ErrNotReplicated = errors.New("rediscache: too few replicas acknowledged the write")

// DefaultLockReplicasTimeout is the default of Options.LockReplicasTimeout.
const DefaultLockReplicasTimeout = 100 * time.Millisecond

// waitLate is how late a WAIT may answer after its timeout: Redis checks the timeouts of
// blocked commands on its cron, hz times a second (10 by default).
const waitLate = 100 * time.Millisecond

// undoTimeout bounds the compare-and-delete that takes back an acquisition whose write
// too few replicas acknowledged.
const undoTimeout = time.Second

// replicaOptions checks Options.LockReplicas and LockReplicasTimeout against the client.
func replicaOptions(o *Options, c redis.UniversalClient) error {
	switch {
	case o.LockReplicas < 0:
		return fmt.Errorf("rediscache: LockReplicas %d is negative", o.LockReplicas)
	case o.LockReplicasTimeout < 0:
		return fmt.Errorf("rediscache: LockReplicasTimeout %v is negative", o.LockReplicasTimeout)
	case o.LockReplicas == 0:
		return nil
	}
	if o.LockReplicasTimeout == 0 {
		o.LockReplicasTimeout = DefaultLockReplicasTimeout
	}
	var read time.Duration
	switch c := c.(type) {
	case *redis.Client:
		read = c.Options().ReadTimeout
	case *redis.ClusterClient:
		read = c.Options().ReadTimeout
	default:
		return fmt.Errorf("rediscache: LockReplicas needs a *redis.Client (single node or Sentinel) or a *redis.ClusterClient, not a %T: WAIT must run on the connection that wrote", c)
	}
	if read > 0 && read <= o.LockReplicasTimeout+waitLate {
		return fmt.Errorf("rediscache: LockReplicasTimeout %v + %v is not below the client's ReadTimeout %v: a WAIT would time out on the client first", o.LockReplicasTimeout, waitLate, read)
	}
	return nil
}

// waitMillis is the timeout of a WAIT: LockReplicasTimeout, or three quarters of what
// is left of ctx when that is shorter (so that WAIT's answer arrives before the
// deadline), and never 0 (which would make WAIT block for good).
func (d *Driver) waitMillis(ctx context.Context) int64 {
	t := d.replTimeout
	if dl, ok := ctx.Deadline(); ok {
		t = min(t, time.Until(dl)*3/4)
	}
	return max(int64(t/time.Millisecond), 1)
}

// withWait sends cmds and then WAIT LockReplicas <timeout> in one pipeline, on one
// connection to the master that serves key (a pool would otherwise be free to send
// WAIT on another connection, where it would wait for nothing), and returns the WAIT
// command. Each command carries its own result; an error that prevents sending (no
// node for key, or an open circuit breaker) is set on all of them. The breaker stops
// an acquisition but never a renewal (Extend), like Extend without LockReplicas.
func (d *Driver) withWait(ctx context.Context, c redis.UniversalClient, key string, cmds ...redis.Cmder) *redis.IntCmd {
	wait := redis.NewIntCmd(ctx, "wait", d.replicas, d.waitMillis(ctx))
	if !isRenewal(cmds) {
		if err := d.brk.allow(); err != nil {
			for _, cmd := range cmds {
				cmd.SetErr(err)
			}
			wait.SetErr(err)
			return wait
		}
	}
	var node *redis.Client
	switch c := c.(type) {
	case *redis.Client:
		node = c
	case *redis.ClusterClient:
		n, err := c.MasterForKey(ctx, key)
		if err != nil {
			for _, cmd := range cmds {
				cmd.SetErr(err)
			}
			wait.SetErr(err)
			return wait
		}
		node = n
		defer func() {
			// The node's client follows no MOVED or ASK, and does not tell the Cluster
			// client of a node that went away: have it reload the slots after a failure.
			for _, cmd := range cmds {
				if cmd.Err() != nil && cmd.Err() != redis.Nil {
					c.ReloadState(ctx)
					return
				}
			}
		}()
	default: // New refuses LockReplicas on other clients
		err := fmt.Errorf("LockReplicas on a %T", c)
		for _, cmd := range cmds {
			cmd.SetErr(err)
		}
		wait.SetErr(err)
		return wait
	}
	pipe := node.Pipeline()
	for _, cmd := range cmds {
		_ = pipe.Process(ctx, noRetryCmd(cmd)) // a write: see noRetry
	}
	_ = pipe.Process(ctx, wait)
	_, err := pipe.Exec(ctx) // each command holds its own error
	d.brk.record(ctx, err)
	return wait
}

// isRenewal reports whether cmds is Extend's script.
func isRenewal(cmds []redis.Cmder) bool {
	if len(cmds) == 0 {
		return false
	}
	a := cmds[0].Args()
	return len(a) > 1 && (a[1] == extendScript.sha || a[1] == extendScript.src)
}

// runWait is script.run followed by WAIT on the same connection (see withWait).
func (s *script) runWait(ctx context.Context, d *Driver, c redis.UniversalClient, keys []string, args ...any) (*redis.Cmd, *redis.IntCmd) {
	a := make([]any, 0, 3+len(keys)+len(args))
	a = append(a, "evalsha", s.sha, len(keys))
	for _, k := range keys {
		a = append(a, k)
	}
	a = append(a, args...)
	cmd := redis.NewCmd(ctx, a...)
	cmd.SetFirstKeyPos(3)
	wait := d.withWait(ctx, c, keys[0], cmd)
	if err := cmd.Err(); err == nil || !redis.HasErrorPrefix(err, "NOSCRIPT") {
		return cmd, wait
	}
	a[0], a[1] = "eval", s.src
	cmd = redis.NewCmd(ctx, a...)
	cmd.SetFirstKeyPos(3)
	wait = d.withWait(ctx, c, keys[0], cmd)
	return cmd, wait
}

// checkReplicated returns nil when wait reports at least LockReplicas replicas, and an
// error otherwise: WAIT's own, or one matching ErrNotReplicated.
func (d *Driver) checkReplicated(wait *redis.IntCmd) error {
	n, err := wait.Result()
	if err != nil {
		return fmt.Errorf("WAIT for %d replicas: %w", d.replicas, err)
	}
	if n < int64(d.replicas) {
		return fmt.Errorf("%w: %d of %d replicas acknowledged within %d ms", ErrNotReplicated, n, d.replicas, wait.Args()[2])
	}
	return nil
}

// undo takes back an acquisition that did not reach enough replicas: a compare-and-
// delete of the value it wrote, on a context free of ctx's cancellation (the caller's
// deadline may be what cut WAIT short). Best effort: if it fails, the key expires with
// its TTL.
func (d *Driver) undo(ctx context.Context, key string, v []byte) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), undoTimeout)
	defer cancel()
	_ = compareAndDeleteScript.run(ctx, d.lockOnce, []string{key}, v)
}
