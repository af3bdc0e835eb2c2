package inproc

import (
	"context"
	"sync"
	"sync/atomic"
)

// Watchers implements driver.Watcher for the in-process drivers: waiters register a
// channel per key, and the driver calls Notify after each delete. The zero value is ready.
// Notify costs one atomic load while nobody watches.
type Watchers struct {
	n  atomic.Int64 // registered watches; Notify skips the lock at 0
	mu sync.Mutex
	m  map[string]map[*watch]struct{}
}

type watch struct {
	ch   chan struct{}
	once sync.Once
}

func (w *watch) close() { w.once.Do(func() { close(w.ch) }) }

// Watch returns a channel closed at the next Notify of key, or when ctx ends.
func (ws *Watchers) Watch(ctx context.Context, key string) (<-chan struct{}, error) {
	w := &watch{ch: make(chan struct{})}
	ws.mu.Lock()
	if ws.m == nil {
		ws.m = make(map[string]map[*watch]struct{})
	}
	set := ws.m[key]
	if set == nil {
		set = make(map[*watch]struct{})
		ws.m[key] = set
	}
	set[w] = struct{}{}
	ws.n.Add(1)
	ws.mu.Unlock()
	context.AfterFunc(ctx, func() {
		ws.mu.Lock()
		ws.remove(key, w)
		ws.mu.Unlock()
		w.close()
	})
	return w.ch, nil
}

// remove unregisters w. ws.mu is held.
func (ws *Watchers) remove(key string, w *watch) {
	set := ws.m[key]
	if _, ok := set[w]; !ok {
		return
	}
	delete(set, w)
	ws.n.Add(-1)
	if len(set) == 0 {
		delete(ws.m, key)
	}
}

// Notify wakes every watcher of the keys.
func (ws *Watchers) Notify(keys ...string) {
	if ws.n.Load() == 0 {
		return
	}
	ws.mu.Lock()
	defer ws.mu.Unlock()
	for _, k := range keys {
		for w := range ws.m[k] {
			ws.remove(k, w)
			w.close()
		}
	}
}

// NotifyIf wakes every watcher of a key for which match is true (a namespace delete, a
// flush).
func (ws *Watchers) NotifyIf(match func(key string) bool) {
	if ws.n.Load() == 0 {
		return
	}
	ws.mu.Lock()
	defer ws.mu.Unlock()
	for k, set := range ws.m {
		if match(k) {
			for w := range set {
				ws.remove(k, w)
				w.close()
			}
		}
	}
}

// Fences are the fencing counters of an in-process driver: one counter for every key, so
// that a token still grows with every acquisition of each key (and of all of them), with
// no memory kept per key. The zero value is ready.
type Fences struct {
	n atomic.Int64
}

// Next returns the next fencing token for key: higher than every token given before.
func (f *Fences) Next(string) int64 { return f.n.Add(1) }
