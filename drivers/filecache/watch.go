package filecache

import (
	"context"
	"os"
	"sync"
	"time"

	"github.com/cachekit/cache/internal/keywatch"
)

// Watch returns a channel that is closed when key's file is next removed or replaced
// (Delete, Pull, CompareAndDelete, CompareAndSwap, DeleteNamespace, Flush, the sweep, and
// also Set and the other writes), by this process or any other on the host; and when ctx
// ends or the driver closes. A lock waiter (LockOptions.Wait) wakes on it at once when
// the holder releases, in whichever process.
//
// On Linux the events come from inotify(7) on Dir, watched only while some Watch is
// pending. Elsewhere, or when inotify is not available (no instances left), the driver
// stats the watched files every two milliseconds while some Watch is pending. An entry
// that expires is not reported: waiters poll as well.
func (d *Driver) Watch(ctx context.Context, key string) (<-chan struct{}, error) {
	if err := d.check(ctx); err != nil {
		return nil, err
	}
	if err := checkKey(key); err != nil {
		return nil, err
	}
	return d.watches.add(ctx, d, fileName(key))
}

// watches are the pending Watch calls of a driver, by file name, and the source of
// their events, started by the first Watch.
type watches struct {
	reg    keywatch.Registry // Data of a waiter: the file when it began (poller), or nil
	mu     sync.Mutex
	closed bool
	src    eventSource
	done   chan struct{} // closed when the source's goroutine returns
}

// eventSource tells the watches which files changed.
type eventSource interface {
	// watching is called with the registry's lock held when the number of pending
	// watches goes from 0 to 1 (true) or from 1 to 0 (false).
	watching(on bool)
	// close stops the source; its goroutine then returns and closes w.done.
	close()
}

func (w *watches) add(ctx context.Context, d *Driver, name string) (<-chan struct{}, error) {
	src, err := w.source(d)
	if err != nil {
		return nil, err
	}
	var base os.FileInfo
	if _, ok := src.(*poller); ok {
		base, _ = os.Lstat(d.path(name))
	}
	wt, err := w.reg.Add(ctx, name, base)
	if err != nil {
		return nil, errClosed
	}
	return wt.C(), nil
}

// source returns the event source, started on the first call.
func (w *watches) source(d *Driver) (eventSource, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil, errClosed
	}
	if w.src == nil {
		w.done = make(chan struct{})
		w.src = newEventSource(d, w)
		w.reg.Hooks.Active = w.src.watching
	}
	return w.src, nil
}

// close fires every watch, stops the source and waits for its goroutine.
func (w *watches) close() {
	w.mu.Lock()
	w.closed = true
	src, done := w.src, w.done
	w.mu.Unlock()
	w.reg.Close()
	if src != nil {
		src.close()
		<-done
	}
}

// poller is the portable event source: while watches are pending, it stats every
// watched file every pollEvery and reports those removed or replaced since the watch
// began.
type poller struct {
	d    *Driver
	w    *watches
	kick chan struct{} // a send wakes the idle goroutine
	quit chan struct{}
}

const pollEvery = 2 * time.Millisecond

// forcePoller makes every driver poll instead of using inotify: for tests.
var forcePoller = false

func newPoller(d *Driver, w *watches) *poller {
	p := &poller{d: d, w: w, kick: make(chan struct{}, 1), quit: make(chan struct{})}
	go p.run()
	return p
}

func (p *poller) watching(on bool) {
	if on {
		select {
		case p.kick <- struct{}{}:
		default:
		}
	}
}

func (p *poller) close() { close(p.quit) }

func (p *poller) run() {
	defer close(p.w.done)
	t := time.NewTicker(pollEvery)
	defer t.Stop()
	type pending struct {
		wt   *keywatch.Waiter
		base os.FileInfo
	}
	var snap []pending
	for {
		snap = snap[:0]
		p.w.reg.Each(func(wt *keywatch.Waiter) {
			base, _ := wt.Data.(os.FileInfo)
			snap = append(snap, pending{wt, base})
		})
		if len(snap) == 0 {
			select {
			case <-p.quit:
				return
			case <-p.kick:
				continue
			}
		}
		select {
		case <-p.quit:
			return
		case <-t.C:
		}
		for _, s := range snap {
			now, err := os.Lstat(p.d.path(s.wt.Key()))
			if s.base != nil && (err != nil || !os.SameFile(s.base, now)) {
				p.w.reg.Fire(s.wt)
			}
		}
	}
}
