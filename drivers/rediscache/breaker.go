package rediscache

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// ErrUnavailable is returned, wrapped, by every command the circuit breaker stops:
// Redis could not be reached a moment ago, and the driver fails at once instead of
// redialing. It is an error, never a miss and never "someone else holds the lock". See
// [BreakerOptions].
var ErrUnavailable = errors.New("rediscache: Redis is unreachable; the circuit breaker is open")

// Defaults of [BreakerOptions].
const (
	DefaultBreakerCooldown     = 250 * time.Millisecond
	DefaultBreakerProbeTimeout = time.Second
)

// BreakerOptions configure the circuit breaker (Options.Breaker). It is on unless Off
// is set.
//
// The breaker is closed (commands go to Redis) until a command fails without an answer
// from Redis: a refused or dropped connection, an I/O timeout, a pool timeout, a
// deadline that ran out while waiting for Redis. Such a failure does not open it by
// itself: it makes the breaker check, in the background, with a PING of its own (at
// most one at a time, and at most one per Cooldown while Redis answers). If that PING
// gets no answer within ProbeTimeout, and no other command of the driver got an answer
// from Redis while it was out, the breaker opens. A reply of Redis's (a miss, WRONGTYPE,
// NOSCRIPT, BUSY, any error reply) is an answer and never counts; a context cancelled
// by the caller does not count either.
//
// While open, every command that the breaker guards fails at once (in well under a
// microsecond) with an error matching [ErrUnavailable], and the breaker sends a PING
// every Cooldown; the first that is answered closes it. User calls never wait for a
// probe.
//
// Each failed command has already been retried by go-redis (its DialerRetries dials,
// 100 ms apart by default, and MaxRetries), so one failure confirmed by the PING is
// enough evidence: there is no count of consecutive failures to configure.
//
// See docs/outages.md for what the breaker guards, and what it means for locks, a
// Cluster and Sentinel.
type BreakerOptions struct {
	// Off turns the breaker off: every command goes to Redis, as without a breaker.
	Off bool
	// Cooldown is the time between two probes while the breaker is open, and the least
	// time between two checks while it is closed. After Redis is back, commands go to
	// it again within about Cooldown. Default: [DefaultBreakerCooldown] (250 ms); a
	// negative value is the default.
	Cooldown time.Duration
	// ProbeTimeout is how long the breaker's PING may take before it counts as
	// unanswered. Default: [DefaultBreakerProbeTimeout] (1 s); a negative value is the
	// default.
	ProbeTimeout time.Duration
}

// breaker is the circuit breaker of a driver (see BreakerOptions). Its methods are safe
// on a nil *breaker (off): allow lets everything through and record does nothing.
type breaker struct {
	cooldown     time.Duration
	probeTimeout time.Duration
	probe        func(ctx context.Context) error // the breaker's PING
	closed       func() bool                     // the driver was closed

	open     atomic.Bool
	probing  atomic.Bool  // a probe goroutine runs: checking (closed) or probing (open)
	answered atomic.Bool  // a command got an answer from Redis while a check ran
	checked  atomic.Int64 // when the last check started, in Unix nanoseconds
}

// installBreaker puts the circuit breaker in front of d's commands: the single-key
// commands (d.exec, batched or not), a lock's release (d.release), the multi-key
// commands of batch.go, the pipelines of LockReplicas (withWait) and Watch. A lock's
// renewal (Extend) is deliberately not stopped by it (see docs/outages.md).
func (d *Driver) installBreaker(o BreakerOptions) {
	if o.Off {
		return
	}
	b := &breaker{
		cooldown:     o.Cooldown,
		probeTimeout: o.ProbeTimeout,
		probe:        d.probe(),
		closed:       d.closed.Load,
	}
	if b.cooldown <= 0 {
		b.cooldown = DefaultBreakerCooldown
	}
	if b.probeTimeout <= 0 {
		b.probeTimeout = DefaultBreakerProbeTimeout
	}
	d.brk = b
	d.exec = guarded{b, d.exec}
	d.release = guarded{b, d.release}
}

// BreakerOpen reports whether the circuit breaker is open: Redis could not be reached
// at the last check, and the guarded commands fail at once with [ErrUnavailable]. It
// is always false with Options.Breaker.Off. It sends nothing: a health check may call
// it as often as it likes.
func (d *Driver) BreakerOpen() bool { return d.brk != nil && d.brk.open.Load() }

// probe returns the breaker's PING for d's client.
//
// One node: a PING on a client of its own, built for the probe from the lock client's
// options (one dial, no retry) and closed after it, so that a probe neither waits
// behind the application's commands in a busy pool nor inherits go-redis's pool state
// (after PoolSize failed dials a pool fails every dial at once until its own redial,
// once a second, gets through).
//
// Sentinel: a PING through the driver's client, which asks the Sentinels for the
// current master, so that the breaker closes as soon as a new master answers.
//
// Cluster and Ring: a PING to every master (every shard), answered if any answers: the
// breaker is one per driver, so it opens only when no node can be reached, and a
// single node down leaves the other nodes' keys alone.
func (d *Driver) probe() func(ctx context.Context) error {
	switch c := d.lockc.(type) {
	case *redis.Client:
		if !d.ownsLockc {
			return func(ctx context.Context) error { return c.Ping(ctx).Err() }
		}
		o := *c.Options()
		// PoolSize 2: a pool whose failed dials reach PoolSize starts a redial goroutine
		// that outlives Close by up to a second; one PING makes at most one.
		o.PoolSize, o.MinIdleConns, o.MaxIdleConns = 2, 0, 0
		o.DialerRetries, o.MaxRetries = 1, -1
		return func(ctx context.Context) error {
			pc := redis.NewClient(&o)
			defer pc.Close()
			return pc.Ping(ctx).Err()
		}
	case *redis.ClusterClient:
		return func(ctx context.Context) error {
			return anyAnswers(ctx, func(fn func(context.Context, *redis.Client) error) error {
				return c.ForEachMaster(ctx, fn)
			})
		}
	case *redis.Ring:
		return func(ctx context.Context) error {
			return anyAnswers(ctx, func(fn func(context.Context, *redis.Client) error) error {
				return c.ForEachShard(ctx, fn)
			})
		}
	}
	c := d.lockc
	return func(ctx context.Context) error { return c.Ping(ctx).Err() }
}

// anyAnswers PINGs every node that each visits and returns nil if at least one
// answered, and otherwise the first error.
func anyAnswers(ctx context.Context, each func(func(context.Context, *redis.Client) error) error) error {
	var ok atomic.Bool
	err := each(func(ctx context.Context, node *redis.Client) error {
		if err := node.Ping(ctx).Err(); err != nil {
			return err
		}
		ok.Store(true)
		return nil
	})
	if ok.Load() {
		return nil
	}
	if err == nil {
		err = errors.New("no node to ping")
	}
	return err
}

// allow returns ErrUnavailable while the breaker is open, and nil otherwise.
func (b *breaker) allow() error {
	if b != nil && b.open.Load() {
		return ErrUnavailable
	}
	return nil
}

// record takes the outcome of a command sent to Redis on ctx: an answer, a failure
// that makes the breaker check, or neither.
func (b *breaker) record(ctx context.Context, err error) {
	if b == nil {
		return
	}
	if err == nil || isAnswer(err) {
		if b.probing.Load() {
			b.answered.Store(true)
		}
		return
	}
	if failure(ctx, err) {
		b.check()
	}
}

// isAnswer reports whether err is a reply of Redis's (redis.Nil included).
func isAnswer(err error) bool {
	if err == redis.Nil {
		return true
	}
	var re redis.Error
	return errors.As(err, &re)
}

// failure reports whether err, the outcome of a command sent on ctx and not a reply of
// Redis's, says that Redis may not be reachable: any error but the caller's
// cancellation, a closed client and the breaker's own.
func failure(ctx context.Context, err error) bool {
	switch {
	case errors.Is(err, ErrUnavailable), errors.Is(err, redis.ErrClosed):
		return false
	case errors.Is(ctx.Err(), context.Canceled):
		// The caller gave up, which says nothing about Redis (go-redis may report the
		// last dial error rather than the cancellation).
		return false
	}
	return true
}

// check starts a check in the background, unless one runs or one started less than a
// cooldown ago.
func (b *breaker) check() {
	now := time.Now().UnixNano()
	if now-b.checked.Load() < int64(b.cooldown) || !b.probing.CompareAndSwap(false, true) {
		return
	}
	b.checked.Store(now)
	b.answered.Store(false)
	go b.run()
}

// run is the probe goroutine: it opens the breaker if the check fails, then probes
// every cooldown until Redis answers, and closes it. It stops early when the driver is
// closed (the breaker stays as it was: a closed driver fails with ErrClosed anyway).
func (b *breaker) run() {
	defer b.probing.Store(false)
	if b.ping() == nil || b.answered.Load() {
		return
	}
	b.open.Store(true)
	t := time.NewTimer(b.cooldown)
	defer t.Stop()
	for {
		<-t.C
		if b.closed() {
			return
		}
		if b.ping() == nil {
			b.open.Store(false)
			return
		}
		t.Reset(b.cooldown)
	}
}

func (b *breaker) ping() error {
	ctx, cancel := context.WithTimeout(context.Background(), b.probeTimeout)
	defer cancel()
	return b.probe(ctx)
}

// guarded is a processor behind the breaker.
type guarded struct {
	b *breaker
	p processor
}

func (g guarded) Process(ctx context.Context, cmd redis.Cmder) error {
	if err := g.b.allow(); err != nil {
		cmd.SetErr(err)
		return err
	}
	err := g.p.Process(ctx, cmd)
	g.b.record(ctx, err)
	return err
}

// send is d.c.Process behind the breaker.
func (d *Driver) send(ctx context.Context, cmd redis.Cmder) error {
	if err := d.brk.allow(); err != nil {
		cmd.SetErr(err)
		return err
	}
	err := d.c.Process(ctx, cmd)
	d.brk.record(ctx, err)
	return err
}
