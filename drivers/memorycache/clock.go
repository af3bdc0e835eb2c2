package memorycache

import (
	"sync"
	"sync/atomic"
	"time"
	"weak"
)

// coarseClock is the driver's default clock (otter's Clock): NowNano reads a variable
// that a goroutine sets to the time once per resolution, and that sync sets to the time
// at once. Time is counted on the monotonic clock from the clock's creation, so that a
// step of the wall clock moves no expiry.
//
// The variable only moves forward, to a reading of the monotonic clock taken before it
// is stored: the clock never runs ahead of the time, and lags behind it by up to the
// resolution, or by as long as the goroutine cannot run (tens or hundreds of
// milliseconds when the CPU is busy).
//
// Lags are safe for reads: an entry whose expiry is checked against a clock that lags
// looks alive a little longer, never shorter. They are not safe for writes: an expiry is
// written as the clock's time plus the TTL, so a lag shortens the entry's life by as much.
// A lock entry's expiry must not come before its holder's lease ends (the lease is
// counted on the monotonic clock from before the write), so every write of a lock entry
// calls sync first: otter reads the clock under the key's lock after that, and reads at
// least the time of the sync, which comes after the lease's start. See Driver.exact for
// the paths.
type coarseClock struct {
	base time.Time // with a monotonic reading: the clock counts from it
	nano int64     // base.UnixNano(), so that otter's times are Unix times
	now  atomic.Int64

	mu      sync.Mutex
	tickers []*time.Ticker // the tickers Tick gave otter's periodic clean-up
	stopped bool
	stop    chan struct{}
	done    chan struct{}
}

func newCoarseClock(resolution time.Duration) *coarseClock {
	base := time.Now()
	c := &coarseClock{base: base, nano: base.UnixNano(), stop: make(chan struct{}), done: make(chan struct{})}
	// The goroutine holds the clock through a weak pointer, so that it stops once the
	// clock is collected (a driver nobody closed), as well as at Stop.
	go runCoarseClock(weak.Make(c), resolution, c.stop, c.done)
	return c
}

func runCoarseClock(wc weak.Pointer[coarseClock], resolution time.Duration, stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(resolution)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			c := wc.Value()
			if c == nil {
				return
			}
			c.sync()
		}
	}
}

// NowNano returns the time of the last sync, in Unix nanoseconds.
func (c *coarseClock) NowNano() int64 { return c.nano + c.now.Load() }

// sync brings the clock up to the time. A concurrent sync that read the monotonic clock
// earlier cannot store its older reading over this one.
func (c *coarseClock) sync() {
	t := int64(time.Since(c.base))
	for {
		cur := c.now.Load()
		if cur >= t || c.now.CompareAndSwap(cur, t) {
			return
		}
	}
}

// Tick gives otter's periodic clean-up its ticks; Stop stops them.
func (c *coarseClock) Tick(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		return nil
	}
	t := time.NewTicker(d)
	c.tickers = append(c.tickers, t)
	return t.C
}

// Stop stops the goroutine and the tickers. The clock then stands still: the driver is
// closed.
func (c *coarseClock) Stop() {
	c.mu.Lock()
	if c.stopped {
		c.mu.Unlock()
		return
	}
	c.stopped = true
	for _, t := range c.tickers {
		t.Stop()
	}
	c.tickers = nil
	c.mu.Unlock()
	close(c.stop)
	<-c.done
}
