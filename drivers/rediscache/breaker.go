package rediscache

import (
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"sync"
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
// The breaker opens only when Redis does not answer. It is closed (commands go to
// Redis) until a command fails without an answer from Redis: a refused or dropped
// connection, an I/O timeout, a pool timeout, a deadline that ran out while waiting for
// Redis. Such a failure does not open it by itself: it makes the breaker check, with a
// PING of its own on a new connection (at most one at a time, and at most one per
// Cooldown while Redis answers). If that PING gets no answer within ProbeTimeout, and
// no other command of the driver got an answer from Redis while it was out, the breaker
// opens. The command whose failure started the check waits for its verdict before it
// returns its own error (as long as its context allows), and so do the commands that
// fail while it runs: a caller that goes on sequentially finds the breaker open at its
// next call, and pays go-redis's redials once.
//
// A reply of Redis's is an answer and never counts: a miss, WRONGTYPE, NOSCRIPT, BUSY,
// and every error reply, to a command or to the handshake of a new connection
// ("max number of clients reached", WRONGPASS or NOAUTH after a password change,
// LOADING, READONLY, OOM). The command returns Redis's error and the breaker stays
// closed; the breaker's PING too counts any reply, error replies included, as alive. A
// context cancelled by the caller does not count either.
//
// While open, every command that the breaker guards fails at once, without sending
// anything, with an error matching [ErrUnavailable], and the breaker sends a PING
// every Cooldown; the first that is answered closes it. When it opens, the reads
// already queued in a batch (see Options.NoBatch) stop waiting for it and fail the same
// way; a queued write waits for its own outcome. Only the commands that fail
// while Redis is unreachable wait for a probe; the others never do.
//
// Each failed command has already been retried by go-redis (its DialerRetries dials,
// 100 ms apart by default, and MaxRetries for the commands the driver lets it retry),
// so one failure confirmed by the PING is enough evidence: there is no count of
// consecutive failures to configure.
//
// The driver reports each change (see [Driver.OnBreaker]); the manager turns them into
// "breaker.opened" and "breaker.closed" events. See docs/outages.md for what the
// breaker guards, and what it means for locks, a Cluster and Sentinel.
type BreakerOptions struct {
	// Off turns the breaker off: every command goes to Redis, as without a breaker.
	Off bool
	// Cooldown is the time between two probes while the breaker is open, and the least
	// time between two checks while it is closed. After Redis is back, commands go to
	// it again within about Cooldown. Default: [DefaultBreakerCooldown] (250 ms); a
	// negative value is the default.
	Cooldown time.Duration
	// ProbeTimeout is how long the breaker's PING may take before it counts as
	// unanswered; it is also the longest that a command which met the outage waits for
	// the verdict, on top of its own failure (less when its context ends sooner).
	// Against a stopped Redis the PING's dial is refused at once and nobody waits that
	// long. Default: [DefaultBreakerProbeTimeout] (1 s); a negative value is the
	// default.
	ProbeTimeout time.Duration
}

// breaker is the circuit breaker of a driver (see BreakerOptions). Its methods are safe
// on a nil *breaker (off): allow lets everything through and record does nothing.
type breaker struct {
	cooldown     time.Duration
	probeTimeout time.Duration
	probe        func(ctx context.Context) error // the breaker's PING
	done         chan struct{}                   // closed by stop, when the driver is closed
	stopOnce     sync.Once

	open     atomic.Bool
	probing  atomic.Bool // a probe goroutine runs: checking (closed) or probing (open)
	answered atomic.Bool // a command got an answer from Redis while a check ran

	// opening is cancelled when the breaker opens, and replaced by a live one when it
	// closes: the queued reads that wait for a batch stop waiting then (see waitQueued).
	opening atomic.Pointer[opening]

	mu       sync.Mutex        // the fields below; never taken by a command that succeeds
	checked  time.Time         // when the last check started
	verdict  chan struct{}     // closed when the last check has decided; nil before the first
	onChange []func(open bool) // OnBreaker's functions
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
		done:         make(chan struct{}),
	}
	if b.cooldown <= 0 {
		b.cooldown = DefaultBreakerCooldown
	}
	if b.probeTimeout <= 0 {
		b.probeTimeout = DefaultBreakerProbeTimeout
	}
	b.opening.Store(newOpening())
	d.brk = b
	if q, ok := d.exec.(batched); ok {
		q.p.brk = b // the queued reads stop waiting when the breaker opens
	}
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
// One node: an inline PING on a connection of its own (see rawPing), dialed with the
// lock client's options (its address, dialer and TLS), so that a probe neither waits
// behind the application's commands in a busy pool nor inherits go-redis's pool state
// (after PoolSize failed dials a pool fails every dial at once until its own redial,
// once a second, gets through), and so that it tells "no answer" from "answered with an
// error" (see rawPing).
//
// Sentinel: the same inline PING, dialed with the client's own dialer, which asks the
// Sentinels for the current master at each dial: so the breaker closes as soon as a new
// master answers, and a master that refuses new connections with an error reply
// (maxclients) answers.
//
// Cluster and Ring: a PING to every master (every shard), as for one node, answered if
// any answers: the breaker is one per driver, so it opens only when no node can be
// reached, and a single node down leaves the other nodes' keys alone.
func (d *Driver) probe() func(ctx context.Context) error {
	switch c := d.lockc.(type) {
	case *redis.Client:
		o := c.Options()
		return func(ctx context.Context) error { return rawPing(ctx, o) }
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

// secondLook is how long rawPing reads again after its deadline passed, for a reply
// that came in time but was not read in time.
const secondLook = 10 * time.Millisecond

// errNotRedis is rawPing's error when the first byte that comes back cannot begin a
// RESP reply.
var errNotRedis = errors.New("the reply to PING is not a Redis reply")

// rawPing dials o's address with o's dialer, sends an inline PING, and returns nil as
// soon as the first byte of any RESP reply comes back: +PONG, and also an error reply
// such as NOAUTH (the connection has not authenticated), LOADING, or "max number of
// clients reached", which Redis sends as it accepts a connection over maxclients and
// then closes it (before or after the PING arrives: the reply is read even when the
// PING could not be written). Any such reply says that Redis answers. It returns an
// error when the dial fails, when nothing comes back before ctx ends, or when what
// comes back is not RESP. A reply that came before ctx ended but was read late (the
// process starved) counts: after the deadline it looks once more, briefly, at what the
// socket holds.
func rawPing(ctx context.Context, o *redis.Options) error {
	conn, err := o.Dialer(ctx, o.Network, o.Addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	_, werr := conn.Write([]byte("PING\r\n"))
	var b [1]byte
	if _, err := io.ReadFull(conn, b[:]); err != nil {
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			return errors.Join(err, werr)
		}
		// The deadline passed; on a starved machine the timer may have fired before this
		// goroutine ran, with Redis's answer already in the socket's buffer. A second
		// look tells "Redis did not answer in time" from "we were late to read".
		stop()
		_ = conn.SetReadDeadline(time.Now().Add(secondLook))
		if _, err2 := io.ReadFull(conn, b[:]); err2 != nil {
			return errors.Join(err, werr)
		}
	}
	if !strings.ContainsRune("+-:$*_,#!=(%~>|", rune(b[0])) {
		return errNotRedis
	}
	return nil
}

// anyAnswers PINGs every node that each visits (see rawPing) and returns nil if at
// least one answered, and otherwise the first error.
func anyAnswers(ctx context.Context, each func(func(context.Context, *redis.Client) error) error) error {
	var ok atomic.Bool
	err := each(func(ctx context.Context, node *redis.Client) error {
		if err := rawPing(ctx, node.Options()); err != nil {
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

// record takes the outcome of a command sent to Redis on ctx: an answer, a failure, or
// neither. After a failure it returns once the breaker has decided whether Redis
// answers (see check), so that the caller's next command sees the verdict.
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
		b.await(ctx, b.check())
	}
}

// isAnswer reports whether err is a reply of Redis's (redis.Nil included): an error
// reply such as "max number of clients reached", WRONGPASS, NOAUTH, LOADING, READONLY
// or OOM is an answer, whether it came to a command or to the handshake of a new
// connection.
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
// cooldown ago, and returns the channel closed when the last check (this one, the one
// running, or a finished one) has decided.
func (b *breaker) check() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	if now := time.Now(); !b.probing.Load() && now.Sub(b.checked) >= b.cooldown {
		b.checked = now
		b.answered.Store(false)
		b.probing.Store(true)
		b.verdict = make(chan struct{})
		go b.run(b.verdict)
	}
	return b.verdict
}

// await waits until verdict is closed or ctx ends. A nil verdict is closed.
func (b *breaker) await(ctx context.Context, verdict <-chan struct{}) {
	if verdict == nil {
		return
	}
	select {
	case <-verdict:
	case <-ctx.Done():
	}
}

// run is the probe goroutine: it opens the breaker if the check fails, closes verdict
// once it has decided, then probes every cooldown until Redis answers, and closes the
// breaker. It stops early when the driver is closed (the breaker stays as it was: a
// closed driver fails with ErrClosed anyway).
func (b *breaker) run(verdict chan struct{}) {
	defer b.probing.Store(false)
	if alive(b.ping()) || b.answered.Load() {
		close(verdict)
		return
	}
	b.setOpen(true)
	close(verdict)
	t := time.NewTimer(b.cooldown)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-b.done:
			return
		}
		if alive(b.ping()) {
			b.setOpen(false)
			return
		}
		t.Reset(b.cooldown)
	}
}

// stop ends the probe goroutine, if one waits for its next probe. It is safe on a nil
// *breaker, and more than once.
func (b *breaker) stop() {
	if b != nil {
		b.stopOnce.Do(func() { close(b.done) })
	}
}

// alive reports whether a probe that returned err reached Redis: no error, or a reply
// of Redis's (an error reply to the PING or to the new connection's handshake).
func alive(err error) bool { return err == nil || isAnswer(err) }

// setOpen opens or closes the breaker and tells OnBreaker's functions when that changes
// it.
func (b *breaker) setOpen(open bool) {
	if b.open.Swap(open) == open {
		return
	}
	if open {
		b.opening.Load().cancel()
	} else {
		b.opening.Store(newOpening())
	}
	b.mu.Lock()
	fns := b.onChange
	b.mu.Unlock()
	for _, fn := range fns {
		fn(open)
	}
}

// opening is a context that ends when the breaker opens.
type opening struct {
	ctx    context.Context
	cancel context.CancelFunc
}

func newOpening() *opening {
	ctx, cancel := context.WithCancel(context.Background())
	return &opening{ctx, cancel}
}

// waitQueued waits for f, a read queued on the driver's autopipeliner, until ctx ends
// or the breaker opens, whichever comes first; when the breaker opens first, it
// returns ErrUnavailable, as the read would have if it had come a moment later. The
// command stays in flight and must not be read then (see autoPipe).
func (b *breaker) waitQueued(ctx context.Context, f redis.AutoFuture) error {
	o := b.opening.Load()
	wctx := o.ctx // when ctx never ends, the breaker's opening alone ends the wait
	if ctx.Done() != nil {
		c, cancel := context.WithCancel(ctx)
		defer cancel()
		defer context.AfterFunc(o.ctx, cancel)()
		wctx = c
	}
	err := f.WaitContext(wctx)
	if err != nil && ctx.Err() == nil && o.ctx.Err() != nil && errors.Is(err, context.Canceled) {
		return ErrUnavailable
	}
	return err
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

// OnBreaker adds fn to the functions called when the circuit breaker opens (open true)
// or closes (open false): once per change, from the breaker's probe goroutine, so fn
// must be quick and must not call the driver. The manager (package cache) registers
// one, which reports the changes as events. With Options.Breaker.Off the breaker never
// changes and fn is never called.
func (d *Driver) OnBreaker(fn func(open bool)) {
	if b := d.brk; b != nil {
		b.mu.Lock()
		b.onChange = append(b.onChange, fn)
		b.mu.Unlock()
	}
}
