// Package faultproxy is a TCP proxy that misbehaves on command, for the fault
// tests of the distributed lock.
//
// A test puts a Proxy between a lock client and its backend (Redis, a Redis
// Cluster node, a Sentinel, PostgreSQL) and then breaks the link while the lock
// is held or contended: Freeze is a partition (bytes are held, nothing is
// closed), Delay is a slow link, Drop is a black hole that also kills new
// dials, and Reset tears every open connection down with RST. The property
// under test is that the lock never has two holders whatever the network does.
//
// A Set keeps one Proxy per target address for clients that dial many nodes;
// its Dial method has the shape of go-redis's Options.Dialer. For a client in
// another process, Set.Route creates the proxies ahead of time and
// EncodeRoutes, DecodeRoutes and Dialer carry the address mapping over an
// environment variable.
package faultproxy

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

const (
	chunkSize   = 32 << 10        // largest chunk read at once
	queueLen    = 64              // chunks held per direction before reading stops
	dialTimeout = 5 * time.Second // dialing the target for a new connection
)

// Stats counts what a Proxy has done since it was created.
type Stats struct {
	// Accepted is the number of connections accepted and forwarded to the target.
	Accepted int64
	// Freezes is the number of Freeze calls that stopped forwarding (a Freeze
	// while already frozen is not counted).
	Freezes int64
	// Delays is the number of chunks held back because a delay was set when
	// they were read.
	Delays int64
	// Drops is the number of new connections closed at once because Drop was on.
	Drops int64
	// DroppedBytes is the number of bytes discarded because Drop was on.
	DroppedBytes int64
	// Resets is the number of connections closed with RST by Reset.
	Resets int64
	// BytesForwarded is the number of bytes delivered, both directions together.
	BytesForwarded int64
}

// Proxy forwards TCP connections from its own loopback listener to one target
// address, and can misbehave on command. All its methods are safe to call
// concurrently with each other and with the traffic it forwards.
type Proxy struct {
	target string
	ln     net.Listener
	ctx    context.Context // cancelled by Close; parent of every upstream dial
	cancel context.CancelFunc
	wg     sync.WaitGroup // every goroutine of the proxy

	delay atomic.Int64 // time.Duration
	drop  atomic.Bool

	mu     sync.Mutex
	frozen bool
	thawed chan struct{} // closed while not frozen
	conns  map[*conn]struct{}
	closed bool

	accepted, freezes, delays, drops, droppedBytes, resets, forwarded atomic.Int64
}

// New starts a proxy listening on 127.0.0.1 on a free port that forwards every
// connection it accepts to target.
func New(target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	thawed := make(chan struct{})
	close(thawed)
	p := &Proxy{
		target: target,
		ln:     ln,
		ctx:    ctx,
		cancel: cancel,
		thawed: thawed,
		conns:  make(map[*conn]struct{}),
	}
	p.wg.Add(1)
	go p.acceptLoop()
	return p, nil
}

// Addr returns the address to dial instead of the target, as "127.0.0.1:port".
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Target returns the address the proxy forwards to.
func (p *Proxy) Target() string { return p.target }

// Freeze stops forwarding bytes in both directions on every connection, open
// ones and new ones (new connections are still accepted, but nothing they send
// or receive is forwarded). Nothing is closed: like a network partition, bytes
// are held until Thaw. A chunk whose write had already begun when Freeze was
// called may still be delivered.
func (p *Proxy) Freeze() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.frozen {
		p.frozen = true
		p.thawed = make(chan struct{})
		p.freezes.Add(1)
	}
}

// Thaw resumes forwarding after Freeze; what was held is delivered, in order.
func (p *Proxy) Thaw() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.frozen {
		p.frozen = false
		close(p.thawed)
	}
}

// Delay makes every chunk read from now on be forwarded d after it was read,
// in both directions; order is kept. Zero or a negative d removes the delay.
func (p *Proxy) Delay(d time.Duration) {
	p.delay.Store(int64(max(d, 0)))
}

// Drop turns the black hole on or off. While it is on, new connections are
// closed with RST as soon as they are accepted, and whatever is read on open
// connections (including the end of a stream) is discarded instead of
// forwarded. Open connections are not closed.
func (p *Proxy) Drop(on bool) { p.drop.Store(on) }

// Reset closes every open connection with RST (SO_LINGER 0) on both sides, the
// client's and the target's. Connections made afterwards work as usual.
func (p *Proxy) Reset() {
	for _, c := range p.snapshot() {
		if c.close(true) {
			p.resets.Add(1)
		}
	}
}

// Close stops the listener, closes every connection and waits until every
// goroutine of the proxy has returned. Calling it again does nothing.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		p.wg.Wait()
		return nil
	}
	p.closed = true
	p.mu.Unlock()
	p.cancel()
	err := p.ln.Close()
	for _, c := range p.snapshot() {
		c.close(false)
	}
	p.wg.Wait()
	return err
}

// Conns returns the number of connections open now.
func (p *Proxy) Conns() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.conns)
}

// Stats returns the counts of what the proxy has done so far.
func (p *Proxy) Stats() Stats {
	return Stats{
		Accepted:       p.accepted.Load(),
		Freezes:        p.freezes.Load(),
		Delays:         p.delays.Load(),
		Drops:          p.drops.Load(),
		DroppedBytes:   p.droppedBytes.Load(),
		Resets:         p.resets.Load(),
		BytesForwarded: p.forwarded.Load(),
	}
}

func (p *Proxy) snapshot() []*conn {
	p.mu.Lock()
	defer p.mu.Unlock()
	cs := make([]*conn, 0, len(p.conns))
	for c := range p.conns {
		cs = append(cs, c)
	}
	return cs
}

func (p *Proxy) acceptLoop() {
	defer p.wg.Done()
	for {
		nc, err := p.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors or the like: try again shortly.
			t := time.NewTimer(5 * time.Millisecond)
			select {
			case <-p.ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			continue
		}
		if p.drop.Load() {
			p.drops.Add(1)
			shut(nc, true)
			continue
		}
		ctx, cancel := context.WithCancel(p.ctx)
		c := &conn{p: p, client: nc, ctx: ctx, cancel: cancel, done: make(chan struct{})}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			cancel()
			shut(nc, false)
			return
		}
		p.conns[c] = struct{}{}
		p.wg.Add(1)
		p.mu.Unlock()
		p.accepted.Add(1)
		go c.run()
	}
}

// waitThawed blocks while the proxy is frozen. It reports false if done was
// closed first.
func (p *Proxy) waitThawed(done <-chan struct{}) bool {
	for {
		p.mu.Lock()
		frozen, thawed := p.frozen, p.thawed
		p.mu.Unlock()
		if !frozen {
			return true
		}
		select {
		case <-thawed:
		case <-done:
			return false
		}
	}
}

// conn is one proxied connection: the client's side, accepted by the proxy,
// and the target's side, dialed by it. Each direction has a reader goroutine
// that queues chunks and a writer goroutine that delivers them once their
// delay is over and the proxy is not frozen.
type conn struct {
	p      *Proxy
	client net.Conn
	ctx    context.Context // cancelled by close; for the upstream dial
	cancel context.CancelFunc
	done   chan struct{} // closed by close

	halfClosed atomic.Int32 // directions whose end of stream was delivered

	mu       sync.Mutex
	upstream net.Conn
	closed   bool
}

type chunk struct {
	data []byte
	eof  bool
	due  time.Time // zero: no delay
}

func (c *conn) run() {
	defer c.p.wg.Done()
	d := net.Dialer{Timeout: dialTimeout}
	up, err := d.DialContext(c.ctx, "tcp", c.p.target)
	if err != nil {
		c.close(true)
		return
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		shut(up, true)
		return
	}
	c.upstream = up
	c.mu.Unlock()

	toUp := make(chan chunk, queueLen)
	toClient := make(chan chunk, queueLen)
	c.p.wg.Add(4)
	go c.read(c.client, toUp)
	go c.write(toUp, up)
	go c.read(up, toClient)
	go c.write(toClient, c.client)
}

// close closes both sides, with RST if rst is set, and reports whether this
// call was the one that closed the connection.
func (c *conn) close(rst bool) bool {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return false
	}
	c.closed = true
	up := c.upstream
	c.mu.Unlock()

	c.cancel()
	close(c.done)
	shut(c.client, rst)
	if up != nil {
		shut(up, rst)
	}
	c.p.mu.Lock()
	delete(c.p.conns, c)
	c.p.mu.Unlock()
	return true
}

func (c *conn) read(src net.Conn, q chan<- chunk) {
	defer c.p.wg.Done()
	buf := make([]byte, chunkSize)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if c.p.drop.Load() {
				c.p.droppedBytes.Add(int64(n))
			} else if !c.queue(q, chunk{data: bytes.Clone(buf[:n])}) {
				return
			}
		}
		if err == nil {
			continue
		}
		if errors.Is(err, io.EOF) {
			if !c.p.drop.Load() {
				c.queue(q, chunk{eof: true})
			}
			return
		}
		c.close(errors.Is(err, syscall.ECONNRESET))
		return
	}
}

// queue stamps ch with its due time and hands it to the writer. It reports
// false if the connection was closed first.
func (c *conn) queue(q chan<- chunk, ch chunk) bool {
	if d := time.Duration(c.p.delay.Load()); d > 0 {
		ch.due = time.Now().Add(d)
		c.p.delays.Add(1)
	}
	select {
	case q <- ch:
		return true
	case <-c.done:
		return false
	}
}

func (c *conn) write(q <-chan chunk, dst net.Conn) {
	defer c.p.wg.Done()
	for {
		var ch chunk
		select {
		case ch = <-q:
		case <-c.done:
			return
		}
		if !ch.due.IsZero() && !c.sleepUntil(ch.due) {
			return
		}
		if !c.p.waitThawed(c.done) {
			return
		}
		if c.p.drop.Load() {
			if ch.eof {
				return
			}
			c.p.droppedBytes.Add(int64(len(ch.data)))
			continue
		}
		if ch.eof {
			if cw, ok := dst.(interface{ CloseWrite() error }); ok {
				_ = cw.CloseWrite()
			}
			if c.halfClosed.Add(1) == 2 {
				c.close(false)
			}
			return
		}
		n, err := dst.Write(ch.data)
		c.p.forwarded.Add(int64(n))
		if err != nil {
			c.close(errors.Is(err, syscall.ECONNRESET))
			return
		}
	}
}

func (c *conn) sleepUntil(t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return true
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-c.done:
		return false
	}
}

// shut closes nc, first setting SO_LINGER to 0 if rst is set so that the peer
// gets an RST instead of a FIN.
func shut(nc net.Conn, rst bool) {
	if rst {
		if tc, ok := nc.(*net.TCPConn); ok {
			_ = tc.SetLinger(0)
		}
	}
	_ = nc.Close()
}
