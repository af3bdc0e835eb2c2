package pgcache

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cachekit/cache/driver"
	"github.com/cachekit/cache/internal/keywatch"
)

const (
	// watchConnectTimeout bounds how long Watch waits for the listening connection to be
	// up (connected, and LISTEN confirmed).
	watchConnectTimeout = 2 * time.Second
	// listenHealthEvery is how often an idle listening connection is checked with a
	// round trip, so that a connection lost without a word (a network partition) is
	// noticed, its watchers woken, and a new one opened.
	listenHealthEvery = 15 * time.Second
	// reconnect backoff of the listening connection.
	reconnectMin, reconnectMax = 20 * time.Millisecond, time.Second
)

// hub keeps one listening connection per driver, opened by the first Watch, shared by
// every watch: it LISTENs on the driver's channel once per connection, and fans each
// notification out to the watches of the key it names.
type hub struct {
	mu      sync.Mutex
	started bool
	closed  bool
	up      bool               // connected and listening
	upc     chan struct{}      // closed when up becomes true; replaced when it drops
	waiters keywatch.Registry  // by payload; added to under mu, so that a drop wakes all
	cancel  context.CancelFunc // stops the listener
	done    chan struct{}      // closed when the listener has returned
	stopped chan struct{}      // closed by stop
}

// Watch returns a channel that is closed when key is next released: deleted by
// CompareAndDelete (a lock's release) or replaced by CompareAndSwap, by any process that
// shares the table; and closed too when ctx ends. Those statements call pg_notify on the
// driver's channel ([Driver.Channel]) with the key as the payload (a hash of it for a key
// over 4000 bytes), and PostgreSQL delivers the notification when they commit. The
// driver keeps one connection of its own that LISTENs on the channel for all its
// watches, opened by the first Watch; every driver that watches receives every release
// of the table, and keeps those its watches name.
//
// Watch returns once that connection is listening, so that a release after Watch
// returns is never missed while it stays up. When it drops, every watch is woken (the
// waiters try again, and poll), and the driver reconnects, with backoff; a Watch while
// it is down waits for it up to 2 s (or ctx) and then fails, so that its waiter polls.
// Delete, Pull, DeleteNamespace, Flush and expiry are not announced: a waiter polls as
// well, as the contract requires.
func (d *Driver) Watch(ctx context.Context, key string) (<-chan struct{}, error) {
	if err := d.check(ctx); err != nil {
		return nil, d.fail("watch", key, err)
	}
	h := &d.hub
	t := time.NewTimer(watchConnectTimeout)
	defer t.Stop()
	for {
		h.mu.Lock()
		if h.closed {
			h.mu.Unlock()
			return nil, d.fail("watch", key, driver.ErrClosed)
		}
		if !h.started {
			h.start(d)
		}
		if h.up {
			ch, err := h.waiters.Watch(ctx, payload(key))
			h.mu.Unlock()
			if err != nil {
				return nil, d.fail("watch", key, err)
			}
			return ch, nil
		}
		upc, stopped := h.upc, h.stopped
		h.mu.Unlock()
		select {
		case <-upc:
		case <-stopped: // Close: the next turn says so
		case <-ctx.Done():
			return nil, d.fail("watch", key, ctx.Err())
		case <-t.C:
			return nil, d.fail("watch", key, errors.New("the listening connection is not up (reconnecting)"))
		}
	}
}

// start starts the listener. h.mu is held.
func (h *hub) start(d *Driver) {
	ctx, cancel := context.WithCancel(context.Background())
	h.started = true
	h.upc = make(chan struct{})
	h.cancel = cancel
	h.done = make(chan struct{})
	h.stopped = make(chan struct{})
	go h.listen(ctx, d)
}

// listen connects, LISTENs, and dispatches notifications until ctx ends; when the
// connection drops it wakes every watch and connects again, with backoff.
func (h *hub) listen(ctx context.Context, d *Driver) {
	defer close(h.done)
	backoff := reconnectMin
	for ctx.Err() == nil {
		conn, err := d.listenConn(ctx)
		if err != nil {
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, reconnectMax)
			continue
		}
		backoff = reconnectMin
		h.mu.Lock()
		h.up = true
		close(h.upc)
		h.mu.Unlock()

		h.receive(ctx, conn)

		cctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_ = conn.Close(cctx)
		cancel()
		h.mu.Lock()
		h.up = false
		h.upc = make(chan struct{})
		h.waiters.NotifyIf(nil)
		h.mu.Unlock()
	}
}

// listenConn opens the listening connection, with the pool's settings, and LISTENs.
func (d *Driver) listenConn(ctx context.Context) (*pgx.Conn, error) {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := pgx.ConnectConfig(cctx, d.pool.Config().ConnConfig)
	if err != nil {
		return nil, err
	}
	if _, err := conn.Exec(cctx, "LISTEN "+pgx.Identifier{d.channel}.Sanitize()); err != nil {
		_ = conn.Close(context.WithoutCancel(cctx))
		return nil, err
	}
	return conn, nil
}

// receive dispatches notifications until the connection fails or ctx ends. An idle
// connection is checked with a round trip every listenHealthEvery.
func (h *hub) receive(ctx context.Context, conn *pgx.Conn) {
	for {
		wctx, cancel := context.WithTimeout(ctx, listenHealthEvery)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		switch {
		case ctx.Err() != nil:
			return
		case err != nil && errors.Is(err, context.DeadlineExceeded) && !conn.IsClosed():
			pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			err = conn.Ping(pctx)
			cancel()
			if err != nil {
				return
			}
			continue
		case err != nil:
			return
		}
		h.waiters.Notify(n.Payload)
	}
}

// stop closes the listening connection, waits for the listener, and wakes every watch.
func (h *hub) stop() {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return
	}
	h.closed = true
	started := h.started
	if started {
		h.cancel()
		close(h.stopped)
	}
	h.mu.Unlock()
	if started {
		<-h.done // the listener wakes every watch on its way out
	}
	h.waiters.Close()
}
