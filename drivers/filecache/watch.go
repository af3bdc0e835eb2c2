package filecache

import (
	"context"
	"os"
	"sync"
	"time"
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

// watches are the pending Watch calls of a driver, by file name.
type watches struct {
	mu     sync.Mutex
	byName map[string]map[*watch]struct{}
	count  int
	closed bool
	src    eventSource // started on the first Watch
	done   chan struct{}
}

type watch struct {
	ch   chan struct{}
	name string
	base os.FileInfo // the file when the watch began, for the poller; nil if missing
	stop func() bool // unregisters the ctx callback
}

// eventSource tells the watches which files changed.
type eventSource interface {
	// watching is called with the watch lock held when the number of pending watches
	// goes from 0 to 1 (true) or from 1 to 0 (false).
	watching(on bool)
	// close stops the source; its goroutine then returns and closes w.done.
	close()
}

func (w *watches) add(ctx context.Context, d *Driver, name string) (<-chan struct{}, error) {
	wt := &watch{ch: make(chan struct{}), name: name}
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return nil, errClosed
	}
	if w.src == nil {
		w.byName = map[string]map[*watch]struct{}{}
		w.done = make(chan struct{})
		w.src = newEventSource(d, w)
	}
	if _, ok := w.src.(*poller); ok {
		wt.base, _ = os.Lstat(d.path(name))
	}
	set := w.byName[name]
	if set == nil {
		set = map[*watch]struct{}{}
		w.byName[name] = set
	}
	set[wt] = struct{}{}
	w.count++
	if w.count == 1 {
		w.src.watching(true)
	}
	// Under w.mu: a ctx that is already done runs the callback in a goroutine of its
	// own, which waits for the lock.
	wt.stop = context.AfterFunc(ctx, func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		w.fire(wt)
	})
	w.mu.Unlock()
	return wt.ch, nil
}

// fire closes wt's channel and forgets it, once. The caller holds w.mu.
func (w *watches) fire(wt *watch) {
	set := w.byName[wt.name]
	if _, ok := set[wt]; !ok {
		return
	}
	delete(set, wt)
	if len(set) == 0 {
		delete(w.byName, wt.name)
	}
	close(wt.ch)
	w.count--
	if w.count == 0 && !w.closed {
		w.src.watching(false)
	}
	wt.stop() // does not wait for a callback that has started
}

// changed fires every watch of the file name.
func (w *watches) changed(name string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for wt := range w.byName[name] {
		w.fire(wt)
	}
}

// all fires every watch: the source lost track (queue overflow, Dir removed).
func (w *watches) all() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.fireAll()
}

func (w *watches) fireAll() {
	for _, set := range w.byName {
		for wt := range set {
			w.fire(wt)
		}
	}
}

// close fires every watch, stops the source and waits for its goroutine.
func (w *watches) close() {
	w.mu.Lock()
	w.closed = true
	w.fireAll()
	src, done := w.src, w.done
	w.mu.Unlock()
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
		wt   *watch
		name string
		base os.FileInfo
	}
	var snap []pending
	for {
		p.w.mu.Lock()
		snap = snap[:0]
		for name, set := range p.w.byName {
			for wt := range set {
				snap = append(snap, pending{wt, name, wt.base})
			}
		}
		p.w.mu.Unlock()
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
			now, err := os.Lstat(p.d.path(s.name))
			gone := s.base != nil && (err != nil || !os.SameFile(s.base, now))
			if gone {
				p.w.mu.Lock()
				p.w.fire(s.wt)
				p.w.mu.Unlock()
			}
		}
	}
}
