package rediscache

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// tracker is one tracking connection: to a single node, a Sentinel master, or one
// master of a Cluster.
type tracker struct {
	n    *near
	addr string
	c    *redis.Client // of its own: its only connection is the PubSub's
	// The master proof (see probe): token names the probe channels; on a Cluster,
	// node is the client of the tracked master and probeKey a key of one of its slots.
	token    string
	node     *redis.Client
	probeKey string

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex
	ps     *redis.PubSub
	closed bool

	// pmu guards epoch, live, pings and the stores of confirmed.
	pmu       sync.Mutex
	epoch     uint64 // connections made so far
	live      bool   // subscribed on the current connection
	pings     [nearPings]pingRec
	confirmed atomic.Int64
}

// pingRec is a ping round: it confirms once both its pong and its probe have come
// back, on the connection it was sent on.
type pingRec struct {
	seq            uint64
	sent           int64 // mono
	epoch          uint64
	ponged, probed bool
}

// newTracker makes a tracker on a copy of o (a single node's, a Sentinel client's, a
// Cluster master's options), not started.
func (n *near) newTracker(o *redis.Options) *tracker {
	t := &tracker{n: n, addr: o.Addr, token: newToken()}
	t.ctx, t.cancel = context.WithCancel(n.ctx)
	to := *o
	to.Protocol = 2 // invalidations as Pub/Sub messages on the connection itself
	to.MinIdleConns = 0
	to.ContextTimeoutEnabled = true
	// One dial per attempt: a lost connection is reported to the receiver at once (which
	// retries with its own backoff) rather than after go-redis's redials.
	to.DialerRetries = 1
	// As for the lock client (see lockClient): per-client machinery that must not be
	// shared or is not needed.
	to.PushNotificationProcessor = nil
	to.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	to.ClientSideCache, to.ClientSideCacheConfig = nil, nil
	user := o.OnConnect
	to.OnConnect = func(ctx context.Context, cn *redis.Conn) error {
		if user != nil {
			if err := user(ctx, cn); err != nil {
				return err
			}
		}
		return t.onConnect(ctx, cn)
	}
	t.c = redis.NewClient(&to)
	return t
}

// start subscribes and starts the receiver and the pinger. With check, it waits for the
// first connection (up to connectWait) and returns errTrackingRefused if Redis refuses
// tracking.
func (t *tracker) start(check bool) error {
	t.mu.Lock()
	t.ps = t.c.Subscribe(t.ctx)
	ps := t.ps
	t.mu.Unlock()
	if check {
		ctx, cancel := context.WithTimeout(t.ctx, connectWait)
		err := ps.Subscribe(ctx, invalidateChannel)
		cancel()
		if errors.Is(err, errTrackingRefused) {
			return fmt.Errorf("rediscache: Options.Near on %s: %w", t.where(), err)
		}
	} else {
		_ = ps.Subscribe(t.ctx, invalidateChannel) // the receiver retries
	}
	t.wg.Add(2)
	go t.receive()
	go t.ping()
	return nil
}

func (t *tracker) where() string {
	if t.addr == failoverAddr {
		return "the Sentinel master"
	}
	return t.addr
}

// stop closes the tracker's connection and waits for its goroutines.
func (t *tracker) stop() error {
	t.cancel()
	t.mu.Lock()
	t.closed = true
	ps := t.ps
	t.mu.Unlock()
	if ps != nil {
		_ = ps.Close()
	}
	t.wg.Wait()
	t.pmu.Lock()
	t.live = false
	t.confirmed.Store(0)
	t.pmu.Unlock()
	return t.c.Close()
}

// onConnect runs on each new tracking connection, before it subscribes: whatever the
// previous connection had not delivered is lost, so the near tier starts over. The
// connection subscribes to its own probe channel here.
func (t *tracker) onConnect(ctx context.Context, cn *redis.Conn) error {
	epoch := t.lost(true)
	id, err := cn.ClientID(ctx).Result()
	if err != nil {
		return trackingError(err)
	}
	args := make([]any, 0, 6+2*len(t.n.prefixes))
	args = append(args, "client", "tracking", "on", "redirect", id, "bcast")
	for _, p := range t.n.prefixes {
		args = append(args, "prefix", p)
	}
	if err := cn.Do(ctx, args...).Err(); err != nil {
		return trackingError(err)
	}
	return cn.Do(ctx, "subscribe", t.probeChannel(epoch)).Err()
}

// trackingError marks Redis's refusal of CLIENT ID or CLIENT TRACKING.
func trackingError(err error) error {
	var re redis.Error
	if errors.As(err, &re) {
		return fmt.Errorf("%w: %w", errTrackingRefused, err)
	}
	return err
}

// lost says that the tracking connection is gone (or new, with newConn): nothing it
// confirmed counts any more, and the near tier starts over. It returns the current
// connection's epoch.
func (t *tracker) lost(newConn bool) uint64 {
	t.pmu.Lock()
	if newConn {
		t.epoch++
	}
	epoch := t.epoch
	t.live = false
	t.confirmed.Store(0)
	t.pmu.Unlock()
	t.n.recompute()
	t.n.reset()
	return epoch
}

// unconfirm withdraws what the connection of epoch confirmed, and empties the near
// tier, if it is still the current one.
func (t *tracker) unconfirm(epoch uint64) bool {
	t.pmu.Lock()
	cur := epoch == t.epoch
	if cur {
		t.confirmed.Store(0)
	}
	t.pmu.Unlock()
	if cur {
		t.n.recompute()
		t.n.reset()
	}
	return cur
}

// current is the tracker's PubSub.
func (t *tracker) current() *redis.PubSub {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.ps
}

// renew replaces the PubSub, and so its connection: the way to drop a connection that
// has gone silent (a partition, a frozen server), which go-redis would keep.
func (t *tracker) renew() {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return
	}
	old := t.ps
	t.ps = t.c.Subscribe(t.ctx)
	ps := t.ps
	t.mu.Unlock()
	_ = old.Close()
	_ = ps.Subscribe(t.ctx, invalidateChannel)
}

// receive reads the tracking connection: invalidations, the subscription's
// confirmation, and the pongs.
func (t *tracker) receive() {
	defer t.wg.Done()
	var backoff time.Duration
	for {
		msg, err := t.current().ReceiveTimeout(t.ctx, t.n.deadAfter)
		if t.ctx.Err() != nil {
			return
		}
		if err != nil {
			if strings.Contains(err.Error(), "unsupported pubsub message payload: <nil>") {
				// An invalidation without keys: FLUSHALL or FLUSHDB (go-redis cannot parse
				// it, but has read it whole).
				t.n.reset()
				continue
			}
			t.lost(false)
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.renew()
			}
			backoff = min(max(2*backoff, 10*time.Millisecond), time.Second)
			select {
			case <-t.ctx.Done():
				return
			case <-time.After(backoff):
			}
			continue
		}
		backoff = 0
		t.handle(msg)
	}
}

// handle applies one message of the tracking connection.
func (t *tracker) handle(msg any) {
	switch m := msg.(type) {
	case *redis.Message:
		if m.Channel != invalidateChannel {
			return // a probe's
		}
		for _, k := range m.PayloadSlice {
			t.n.invalidate(k)
		}
		if m.PayloadSlice == nil && m.Payload != "" {
			t.n.invalidate(m.Payload)
		}
	case *redis.Subscription:
		if m.Kind == "subscribe" && m.Channel == invalidateChannel {
			// Invalidations reach this connection from here on; a read that started
			// before may have missed one.
			t.n.reset()
			t.pmu.Lock()
			t.live = true
			t.pmu.Unlock()
		}
	case *redis.Pong:
		if seq, err := strconv.ParseUint(m.Payload, 10, 64); err == nil {
			t.confirm(seq, false)
		}
	}
}

// ping sends a numbered PING every interval.
func (t *tracker) ping() {
	defer t.wg.Done()
	tk := time.NewTicker(t.n.interval)
	defer tk.Stop()
	var seq uint64
	for {
		select {
		case <-t.ctx.Done():
			return
		case <-tk.C:
		}
		seq++
		t.pmu.Lock()
		epoch := t.epoch
		t.pings[seq%nearPings] = pingRec{seq: seq, sent: mono(), epoch: epoch}
		t.pmu.Unlock()
		_ = t.current().Ping(t.ctx, strconv.FormatUint(seq, 10))
		t.runProbe(seq, epoch)
	}
}

// runProbe probes (see probe) for ping round seq, sent on connection epoch.
func (t *tracker) runProbe(seq, epoch uint64) {
	ctx, cancel := context.WithTimeout(t.ctx, t.n.deadAfter)
	v := t.probe(ctx, epoch)
	cancel()
	switch v {
	case probeOK:
		t.confirm(seq, true)
	case probeReplica:
		// The data client reads from a replica: nothing is vouched for until its node is
		// a master again.
		t.unconfirm(epoch)
	case probeElsewhere:
		// The data client has moved to another master: follow it.
		if t.unconfirm(epoch) {
			t.lost(false)
			t.renew()
		}
	}
}

// confirm counts the pong (or, with probe, the probe) of ping round seq. A round whose
// pong and probe have both come back, on the current connection once subscribed, proves
// that every invalidation of a write acknowledged before it was sent has been applied,
// by the node the data client uses.
func (t *tracker) confirm(seq uint64, probe bool) {
	t.pmu.Lock()
	p := &t.pings[seq%nearPings]
	ok := false
	if p.seq == seq {
		if probe {
			p.probed = true
		} else {
			p.ponged = true
		}
		ok = p.ponged && p.probed && p.epoch == t.epoch && t.live && p.sent > t.confirmed.Load()
		if ok {
			t.confirmed.Store(p.sent)
		}
	}
	t.pmu.Unlock()
	if ok {
		t.n.recompute()
	}
}
