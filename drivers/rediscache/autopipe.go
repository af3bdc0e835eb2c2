package rediscache

import (
	"context"
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
// ContextTimeoutEnabled: a queued command cannot be taken back, but a caller whose
// context ends stops waiting and returns the context's error (the command may still
// run, as a plain command cut short by a deadline may have been written). A queued read
// also stops waiting when the circuit breaker opens, and returns [ErrUnavailable]:
// go-redis sends its batches on a context of their own, and when Redis stops, a batch
// keeps redialing (and the batches queued behind it wait) well after the breaker has
// decided that Redis is unreachable, while reads not yet queued fail at once. A write
// (a noRetry command) waits for its own outcome, bounded by the caller's context. After
// such an error the command is still in flight and is never read.
//
// go-redis caches one deferred autopipeliner per client (the first caller's options
// win) and stops it when the client is closed; the driver never closes it itself, since
// another user of a client given as Options.Client may share it.
type autoPipe struct {
	ap   *redis.AutoPipeliner
	busy atomic.Int64 // callers in send
	brk  *breaker     // the driver's circuit breaker (nil: off), set by installBreaker
}

// newAutoPipe returns c's autopipeliner, or nil when c cannot batch: a client of
// another type, or one already closed (its commands fail with ErrClosed as they are).
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
	return &autoPipe{ap: ap}
}

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
	f := p.ap.Submit(ctx, cmd)
	if p.brk == nil || isNoRetry(cmd) {
		return f.WaitContext(ctx)
	}
	return p.brk.waitQueued(ctx, f)
}

// batched is a processor on an autoPipe whose fast path is direct.
type batched struct {
	p      *autoPipe
	direct processor
}

func (b batched) Process(ctx context.Context, cmd redis.Cmder) error {
	return b.p.send(ctx, b.direct, cmd)
}
