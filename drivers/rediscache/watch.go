package rediscache

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cachekit/cache/driver"
	"github.com/cachekit/cache/internal/keywatch"
)

// watchConfirmTimeout bounds how long Watch waits for Redis to confirm a subscription.
const watchConfirmTimeout = 2 * time.Second

// hub shares one Pub/Sub connection among every Watch of a driver: a channel is
// subscribed while at least one watch needs it (the registry's First and Last hooks),
// and armed when Redis confirms the subscription. It starts with the first Watch; Close
// stops it.
type hub struct {
	mu      sync.Mutex
	ps      *redis.PubSub      // nil until the first Watch
	waiters keywatch.Registry  // by channel name
	cancel  context.CancelFunc // stops the reader
	done    chan struct{}      // closed when the reader has returned
	stopped chan struct{}      // closed by stop
	closed  bool
}

// Watch returns a channel that is closed when key is next released: deleted by
// CompareAndDelete (a lock's release) or replaced by CompareAndSwap, by any process that
// shares the Redis; and closed too when ctx ends. The release scripts PUBLISH on the
// channel key + ":released" and the driver keeps one subscriber connection for all its
// watches. Delete, Pull, DeleteNamespace, Flush and expiry are not reported: a waiter
// polls as well, as the contract requires. Messages published while the subscriber
// connection is down are lost; the poll covers that too. On a Ring the subscriber may sit
// on another shard than the publisher, so that waiters there only poll.
//
// Watch returns once Redis has confirmed the subscription, so that a release after
// Watch returns is never missed.
func (d *Driver) Watch(ctx context.Context, key string) (<-chan struct{}, error) {
	if err := d.check(ctx); err != nil {
		return nil, fail("watch", key, err)
	}
	if err := d.brk.allow(); err != nil { // the waiter polls, and its attempt fails fast
		return nil, fail("watch", key, err)
	}
	stopped, err := d.hub.begin(d.c)
	if err != nil {
		return nil, fail("watch", key, err)
	}
	w, err := d.hub.waiters.Add(ctx, releasedChannel(key), nil)
	if err != nil {
		return nil, fail("watch", key, err)
	}
	t := time.NewTimer(watchConfirmTimeout)
	defer t.Stop()
	select {
	case <-w.Armed():
	case <-ctx.Done(): // the registry fires w
	case <-stopped: // Close fired w
	case <-t.C:
		d.hub.waiters.Fire(w)
		return nil, fail("watch", key, errors.New("Redis did not confirm the subscription in time"))
	}
	return w.C(), nil
}

// begin starts the hub on the first call and returns its stopped channel.
func (h *hub) begin(c redis.UniversalClient) (stopped <-chan struct{}, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, driver.ErrClosed
	}
	if h.ps == nil {
		h.start(c)
	}
	return h.stopped, nil
}

// start opens the subscriber connection and its reader. h.mu is held.
func (h *hub) start(c redis.UniversalClient) {
	ctx, cancel := context.WithCancel(context.Background())
	h.ps = c.Subscribe(ctx)
	h.cancel = cancel
	h.done = make(chan struct{})
	h.stopped = make(chan struct{})
	ps := h.ps
	h.waiters.Hooks = keywatch.Hooks{Arm: true, First: func(name string) error {
		sctx, cancel := context.WithTimeout(context.Background(), watchConfirmTimeout)
		defer cancel()
		if err := ps.Subscribe(sctx, name); err != nil {
			// go-redis keeps the channel to subscribe it again on reconnect: drop it.
			_ = ps.Unsubscribe(context.WithoutCancel(sctx), name)
			return err
		}
		return nil
	}, Last: func(name string) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_ = ps.Unsubscribe(ctx, name)
		cancel()
	}}
	go h.read(ctx, h.ps)
}

// read dispatches the subscriber connection's messages until the hub stops. When the
// connection drops, go-redis reconnects and subscribes again on the next Receive.
func (h *hub) read(ctx context.Context, ps *redis.PubSub) {
	defer close(h.done)
	for {
		msg, err := ps.Receive(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			select { // Redis is down: retry, but do not spin
			case <-ctx.Done():
				return
			case <-time.After(50 * time.Millisecond):
			}
			continue
		}
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind == "subscribe" {
				h.waiters.Arm(m.Channel)
			}
		case *redis.Message:
			h.waiters.Notify(m.Channel)
		}
	}
}

// stop closes the subscriber connection, waits for the reader, and wakes every watch.
func (h *hub) stop() error {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil
	}
	h.closed = true
	ps, done := h.ps, h.done
	if ps != nil {
		h.cancel()
		close(h.stopped)
	}
	h.mu.Unlock()
	h.waiters.Close()
	if ps == nil {
		return nil
	}
	err := ps.Close()
	<-done
	return err
}
