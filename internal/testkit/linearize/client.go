package linearize

import (
	"context"
	"errors"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/cachekit/cache"
	"github.com/cachekit/cache/drivers/rediscache"
	"github.com/cachekit/cache/internal/testkit/faultrun"
)

// TTL is the TTL of every value the clients write: far longer than a key is used (keys
// rotate every Job.Epoch), so that expiry, which the model does not know, never plays.
const TTL = 30 * time.Minute

// Client runs random operations on a few keys of a cache and records each.
type Client struct {
	C   *cache.Cache
	Rec *Recorder
	// Keys is the number of keys in use at a time; Epoch how long they are used before
	// the client moves on to fresh ones; Base the CLOCK_MONOTONIC instant epochs count
	// from, the same for every client of a run.
	Keys  int
	Epoch time.Duration
	Base  int64
	// Racy makes the compare-and-swap a negative control: a Get, then a Set if the value
	// matched, instead of Modify. Two clients can both see the value and both write.
	Racy bool
	// OpTimeout bounds each operation (its ctx); 0: none.
	OpTimeout time.Duration
	// Think is the most a client waits between two operations (a random pause).
	Think time.Duration

	seen map[string]int64 // the last value the client saw per key: CAS's expected value
}

// errNoSwap is what the compare-and-swap's Modify fn returns when the key does not hold
// the expected value: Modify then writes nothing and returns it.
var errNoSwap = errors.New("linearize: the key does not hold the expected value")

// The relative frequencies of the operations.
var mix = []struct {
	op Op
	w  int
}{
	{OpGet, 24}, {OpSet, 12}, {OpCreate, 10}, {OpUpdate, 8}, {OpCAS, 20}, {OpIncr, 12}, {OpPull, 7}, {OpRemove, 7},
}

var mixTotal = func() (n int) {
	for _, m := range mix {
		n += m.w
	}
	return n
}()

// next picks a random operation on a key of the current epoch. Values are small, so that
// writers often write what another wrote, and compare-and-swaps often match.
func (c *Client) next() Input {
	epoch := int64(0)
	if c.Epoch > 0 {
		epoch = (faultrun.Mono() - c.Base) / int64(c.Epoch)
	}
	in := Input{Key: "e" + strconv.FormatInt(epoch, 10) + ".k" + strconv.Itoa(rand.N(max(c.Keys, 1)))}
	n := rand.N(mixTotal)
	for _, m := range mix {
		if n -= m.w; n < 0 {
			in.Op = m.op
			break
		}
	}
	switch in.Op {
	case OpSet, OpCreate, OpUpdate:
		in.A = rand.N[int64](5)
	case OpIncr:
		in.A = 1 + rand.N[int64](3)
	case OpCAS:
		v, ok := c.seen[in.Key]
		if !ok || rand.N(4) == 0 {
			v = rand.N[int64](5)
		}
		in.A, in.B = v, rand.N[int64](5)
	}
	return in
}

// Step runs one random operation and records it.
func (c *Client) Step(ctx context.Context) {
	in := c.next()
	seq := c.Rec.Invoke(faultrun.Mono(), in)
	octx, cancel := ctx, context.CancelFunc(func() {})
	if c.OpTimeout > 0 {
		octx, cancel = context.WithTimeout(ctx, c.OpTimeout)
	}
	out, err := c.do(octx, in)
	cancel()
	t := faultrun.Mono()
	res := Classify(err)
	c.Rec.Return(seq, t, res, out, err)
	if res == resOK {
		c.see(in, out)
	}
	switch {
	case err != nil:
		// A store that cannot be reached fails at once: back off, or a tight loop would
		// starve the others of the CPU and fill the history with failures.
		time.Sleep(10*time.Millisecond + rand.N(40*time.Millisecond))
	case c.Think > 0:
		time.Sleep(rand.N(c.Think))
	}
}

// see remembers the value the key held after the operation, as far as the client
// knows: the next compare-and-swap on the key expects it.
func (c *Client) see(in Input, out Output) {
	if c.seen == nil {
		c.seen = map[string]int64{}
	}
	switch {
	case out.Found || in.Op == OpIncr:
		c.seen[in.Key] = out.V
	case in.Op == OpSet, (in.Op == OpCreate || in.Op == OpUpdate) && out.OK:
		c.seen[in.Key] = in.A
	case in.Op == OpCAS && out.OK:
		c.seen[in.Key] = in.B
	}
}

// do runs the operation in on the cache.
func (c *Client) do(ctx context.Context, in Input) (Output, error) {
	switch in.Op {
	case OpGet:
		var v int64
		found, err := c.C.Get(ctx, in.Key, &v)
		return Output{Found: found, V: v}, err
	case OpSet:
		return Output{}, c.C.Set(ctx, in.Key, in.A, TTL)
	case OpCreate, OpUpdate:
		mode := cache.Create
		if in.Op == OpUpdate {
			mode = cache.Update
		}
		r, err := c.C.SetWith(ctx, in.Key, in.A, cache.SetOptions{TTL: TTL, OnConflict: mode})
		return Output{OK: r.Written}, err
	case OpCAS:
		if c.Racy {
			return c.racyCAS(ctx, in)
		}
		var saw Output
		_, err := cache.Modify(ctx, c.C, in.Key, func(cur int64, found bool) (int64, error) {
			saw = Output{Found: found, V: cur}
			if !found || cur != in.A {
				return 0, errNoSwap
			}
			return in.B, nil
		})
		if errors.Is(err, errNoSwap) {
			return saw, nil
		}
		return Output{OK: err == nil}, err
	case OpIncr:
		n, err := c.C.Increment(ctx, in.Key, in.A)
		return Output{V: n}, err
	case OpPull:
		var v int64
		found, err := c.C.Pull(ctx, in.Key, &v)
		return Output{Found: found, V: v}, err
	case OpRemove:
		return Output{}, c.C.Remove(ctx, in.Key)
	}
	return Output{}, errors.New("linearize: unknown operation " + in.Op.String())
}

// racyCAS is the negative control's compare-and-swap: Get, a moment, then Set. Its only
// flaw is that it is not atomic.
func (c *Client) racyCAS(ctx context.Context, in Input) (Output, error) {
	var v int64
	found, err := c.C.Get(ctx, in.Key, &v)
	if err != nil {
		return Output{}, err
	}
	if !found || v != in.A {
		return Output{Found: found, V: v}, nil
	}
	time.Sleep(time.Millisecond) // the window between the read and the write
	if err := c.C.Set(ctx, in.Key, in.B, TTL); err != nil {
		return Output{}, err
	}
	return Output{OK: true}, nil
}

// Classify says what an operation's error proves: nil is resOK; an error that proves
// the operation did nothing is resFail; any other error leaves its outcome unknown
// (resInfo). Proofs of nothing done:
//
//   - rediscache.ErrUnavailable: the circuit breaker stopped the call before it sent
//     anything;
//   - cache.ErrConflict: Modify gave up after compare-and-swaps that all failed;
//   - an error of PostgreSQL of severity ERROR (*pgconn.PgError): the statement, alone
//     in its transaction, was rolled back (a FATAL one, such as a shutdown's, can come
//     after the commit and proves nothing);
//   - a pgx error that is safe to retry (pgconn.SafeToRetry): nothing was sent;
//   - a failed connection to PostgreSQL (*pgconn.ConnectError): the pool had no
//     connection to send the statement on.
//
// A Modify on Redis or PostgreSQL reads, then compare-and-swaps: the steps before the
// failing one were reads or swaps that did not happen, so the same proofs hold for it.
// Everything else, a timeout, a connection reset, a refused dial (go-redis may have sent
// the command on another connection before it retried), counts as unknown.
func Classify(err error) string {
	var pgErr *pgconn.PgError
	var connErr *pgconn.ConnectError
	switch {
	case err == nil:
		return resOK
	case errors.Is(err, rediscache.ErrUnavailable), errors.Is(err, cache.ErrConflict),
		errors.As(err, &pgErr) && statementError(pgErr), pgconn.SafeToRetry(err), errors.As(err, &connErr):
		return resFail
	}
	return resInfo
}

// statementError reports whether a PostgreSQL error is of severity ERROR: it ended the
// statement, not the session.
func statementError(e *pgconn.PgError) bool {
	sev := e.SeverityUnlocalized
	if sev == "" {
		sev = e.Severity
	}
	return sev == "ERROR"
}
