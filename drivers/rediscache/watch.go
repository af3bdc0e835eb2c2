package rediscache

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cachekit/cache/driver"
)

// watchConfirmTimeout bounds how long Watch waits for Redis to confirm a subscription.
const watchConfirmTimeout = 2 * time.Second

// hub shares one Pub/Sub connection among every Watch of a driver: a channel is
// subscribed while at least one watch needs it. It starts with the first Watch; Close
// stops it.
type hub struct {
	mu      sync.Mutex
	ps      *redis.PubSub // nil until the first Watch
	chans   map[string]*watchedChan
	cancel  context.CancelFunc // stops the reader
	done    chan struct{}      // closed when the reader has returned
	stopped chan struct{}      // closed by stop
	closed  bool
}

type watchedChan struct {
	ready   chan struct{} // closed when Redis has confirmed the subscription
	once    sync.Once
	watches map[*watch]struct{}
}

func (c *watchedChan) confirm() { c.once.Do(func() { close(c.ready) }) }

type watch struct {
	ch   chan struct{}
	once sync.Once
}

func (w *watch) fire() { w.once.Do(func() { close(w.ch) }) }

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
	name := releasedChannel(key)
	w := &watch{ch: make(chan struct{})}
	h := &d.hub
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil, fail("watch", key, driver.ErrClosed)
	}
	if h.ps == nil {
		h.start(d.c)
	}
	wc := h.chans[name]
	if wc == nil {
		wc = &watchedChan{ready: make(chan struct{}), watches: make(map[*watch]struct{})}
		h.chans[name] = wc
		if err := h.ps.Subscribe(ctx, name); err != nil {
			delete(h.chans, name)
			// go-redis keeps the channel to subscribe it again on reconnect: drop it.
			_ = h.ps.Unsubscribe(context.WithoutCancel(ctx), name)
			h.mu.Unlock()
			return nil, fail("watch", key, err)
		}
	}
	wc.watches[w] = struct{}{}
	stopped := h.stopped
	h.mu.Unlock()

	context.AfterFunc(ctx, func() {
		h.remove(name, wc, w)
		w.fire()
	})
	t := time.NewTimer(watchConfirmTimeout)
	defer t.Stop()
	select {
	case <-wc.ready:
	case <-ctx.Done(): // the AfterFunc fires w
	case <-stopped: // Close fired w
	case <-t.C:
		h.remove(name, wc, w)
		w.fire()
		return nil, fail("watch", key, errors.New("Redis did not confirm the subscription in time"))
	}
	return w.ch, nil
}

// start opens the subscriber connection and its reader. h.mu is held.
func (h *hub) start(c redis.UniversalClient) {
	ctx, cancel := context.WithCancel(context.Background())
	h.ps = c.Subscribe(ctx)
	h.chans = make(map[string]*watchedChan)
	h.cancel = cancel
	h.done = make(chan struct{})
	h.stopped = make(chan struct{})
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
				h.mu.Lock()
				if wc := h.chans[m.Channel]; wc != nil {
					wc.confirm()
				}
				h.mu.Unlock()
			}
		case *redis.Message:
			h.mu.Lock()
			if wc := h.chans[m.Channel]; wc != nil {
				for w := range wc.watches {
					w.fire()
				}
			}
			h.mu.Unlock()
		}
	}
}

// remove drops w, and the channel's subscription with the last watch.
func (h *hub) remove(name string, wc *watchedChan, w *watch) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := wc.watches[w]; !ok {
		return
	}
	delete(wc.watches, w)
	if len(wc.watches) > 0 || h.chans[name] != wc {
		return
	}
	delete(h.chans, name)
	if !h.closed {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_ = h.ps.Unsubscribe(ctx, name)
		cancel()
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
	for _, wc := range h.chans {
		for w := range wc.watches {
			w.fire()
		}
	}
	h.mu.Unlock()
	if ps == nil {
		return nil
	}
	err := ps.Close()
	<-done
	return err
}
