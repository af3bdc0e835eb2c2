package rediscache

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/redis/go-redis/v9"
)

// processor sends one command and waits for its answer: a go-redis client (one command
// per pooled connection per round trip), or a batched processor (see Options.NoBatch).
type processor interface {
	Process(ctx context.Context, cmd redis.Cmder) error
}

// asyncAutoPipeliner is a go-redis client that can batch: *redis.Client (a single node
// or a Sentinel failover client), *redis.ClusterClient (batches per master, by slot) and
// *redis.Ring.
type asyncAutoPipeliner interface {
	AsyncAutoPipelineWithOptions(*redis.AutoPipelineOptions) (*redis.AutoPipeliner, error)
}

// autoPipe is the driver's batching (on unless Options.NoBatch): go-redis's automatic
// pipelining (the deferred face, AsyncAutoPipeline) on the driver's client, behind a
// fast path for a caller that is alone.
//
// Under concurrency a command is queued, and go-redis's flusher sends whatever is queued
// as one pipeline: at once when nothing is in flight, or as the next pipeline while one
// is, so the commands that arrive during a round trip share the next one, with no timer
// (go-redis's own coalescing waits only for the callers a finished pipeline just woke).
// N concurrent callers thus share the round trips of a few pipelines instead of taking
// one pooled connection each. On a Cluster the queue is sharded by slot and each master
// gets pipelines of its own keys; MOVED and ASK are followed as for a plain command.
//
// A caller that finds no other command of the driver in flight sends its command
// directly on a pooled connection, as with NoBatch: a queue and the flusher's goroutine
// would only add two goroutine wake-ups to its round trip.
//
// The caller's context bounds its wait, as it bounds a plain command with
// ContextTimeoutEnabled: a caller whose context ends stops waiting and returns the
// context's error. A queued command whose caller's context has ended by the time its
// pipeline is flushed is left out of that pipeline (hooks that newAutoPipe adds to the
// client remove it), so it never runs; one already flushed may still run,
// as a plain command cut short by a deadline may have been written.
//
// go-redis caches one deferred autopipeliner per client (the first caller's options
// win) and stops it when the client is closed; the driver never closes it itself, since
// another user of a client given as Options.Client may share it.
type autoPipe struct {
	ap   *redis.AutoPipeliner
	busy atomic.Int64 // callers in send
	// queued maps each command queued by send and not yet flushed to its caller's
	// context.
	queued sync.Map
}

// newAutoPipe returns c's autopipeliner, or nil when c cannot batch: a client of
// another type, or one already closed (its commands fail with ErrClosed as they are).
// The first call for c adds the hooks that leave out commands whose caller gave up.
func newAutoPipe(c redis.UniversalClient) *autoPipe {
	a, ok := c.(asyncAutoPipeliner)
	if !ok {
		return nil
	}
	// go-redis's defaults for the deferred face: an ordered stream, one pipeline in flight
	// per shard (one shard on a single node, up to GOMAXPROCS on a Cluster), up to about
	// 200 commands each, no timer.
	ap, err := a.AsyncAutoPipelineWithOptions(redis.DefaultAutoPipelineOptions())
	if err != nil {
		return nil
	}
	pipesMu.Lock()
	defer pipesMu.Unlock()
	for k := range pipes {
		if k.IsClosed() { // its client is closed: forget it
			delete(pipes, k)
		}
	}
	if p, ok := pipes[ap]; ok {
		return p
	}
	p := &autoPipe{ap: ap}
	c.AddHook(p)
	pipes[ap] = p
	return p
}

// pipes holds one autoPipe per go-redis autopipeliner (one per client), so that the
// drivers over one client share the hooks newAutoPipe adds to it instead of adding one
// each.
var (
	pipesMu sync.Mutex
	pipes   = map[*redis.AutoPipeliner]*autoPipe{}
)

// send sends cmd: on direct when no other command of the driver is in flight, queued on
// the autopipeliner otherwise.
func (p *autoPipe) send(ctx context.Context, direct processor, cmd redis.Cmder) error {
	n := p.busy.Add(1)
	defer p.busy.Add(-1)
	if n == 1 || p.ap.IsClosed() {
		// Alone; or someone closed the autopipeliner that go-redis shares among all
		// the users of the client: the client itself may still work.
		return direct.Process(ctx, cmd)
	}
	p.queued.Store(cmd, ctx)
	f := p.ap.Submit(ctx, cmd)
	err := f.WaitContext(ctx)
	if err == nil || ctx.Err() == nil {
		p.queued.Delete(cmd) // done: flushed, or refused before queueing
		return err
	}
	// Flushed or dropped by now, or still queued: drop forgets it when it is flushed;
	// forget it here once it is done, whichever way.
	go func() { _ = f.Wait(); p.queued.Delete(cmd) }()
	return err
}

// DialHook is part of redis.Hook; drop needs none.
func (p *autoPipe) DialHook(next redis.DialHook) redis.DialHook { return next }

// ProcessHook is drop for a flush of one command (go-redis runs it as a plain one).
func (p *autoPipe) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if err := p.ended(cmd); err != nil {
			return err
		}
		return next(ctx, cmd)
	}
}

// ProcessPipelineHook is drop.
func (p *autoPipe) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error { return p.drop(ctx, cmds, next) }
}

// ended returns, when cmd was queued by send and its caller's context has ended, the
// context's error, which it sets on cmd; nil otherwise. It forgets cmd, which is being
// flushed.
func (p *autoPipe) ended(cmd redis.Cmder) error {
	v, ok := p.queued.LoadAndDelete(cmd)
	if !ok {
		return nil
	}
	err := v.(context.Context).Err()
	if err != nil {
		cmd.SetErr(err)
	}
	return err
}

// drop sends the commands of a pipeline about to be flushed, but those queued by send
// whose caller's context has ended: those get the context's error and are not sent.
// Commands of the client's other pipelines are not send's and pass untouched.
func (p *autoPipe) drop(ctx context.Context, cmds []redis.Cmder, next redis.ProcessPipelineHook) error {
	var keep []redis.Cmder
	for i, cmd := range cmds {
		if p.ended(cmd) == nil {
			if keep != nil {
				keep = append(keep, cmd)
			}
			continue
		}
		if keep == nil {
			keep = append(make([]redis.Cmder, 0, len(cmds)), cmds[:i]...)
		}
	}
	switch {
	case keep == nil:
		return next(ctx, cmds)
	case len(keep) == 0:
		return nil // every command is dropped, each with its error
	}
	return next(ctx, keep)
}

// batched is a processor on an autoPipe whose fast path is direct.
type batched struct {
	p      *autoPipe
	direct processor
}

func (b batched) Process(ctx context.Context, cmd redis.Cmder) error {
	return b.p.send(ctx, b.direct, cmd)
}
