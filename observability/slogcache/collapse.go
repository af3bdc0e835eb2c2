package slogcache

import (
	"log/slog"
	"slices"
	"sync"
	"time"
)

// collapser logs the first record of a key at once and counts the others that come
// within its interval; at the interval's end it logs the last of them with the
// attributes repeated and interval, and starts another interval if there were any.
type collapser struct {
	every time.Duration // <= 0: no collapsing
	emit  func(slog.Record)

	mu      sync.Mutex
	windows map[string]*window
	stopped bool
}

// window is one key's interval.
type window struct {
	n     int         // the records counted, not logged
	last  slog.Record // the last of them
	timer *time.Timer
}

func newCollapser(every time.Duration, emit func(slog.Record)) *collapser {
	if every == 0 {
		every = DefaultCollapse
	}
	return &collapser{every: every, emit: emit, windows: map[string]*window{}}
}

// log logs r now, or counts it if a record of key was logged within the interval.
func (c *collapser) log(key string, r slog.Record) {
	if c.every < 0 {
		c.emit(r)
		return
	}
	c.mu.Lock()
	if w := c.windows[key]; w != nil || c.stopped {
		if w != nil {
			w.n++
			w.last = r
		}
		c.mu.Unlock()
		return
	}
	w := &window{}
	c.windows[key] = w
	w.timer = time.AfterFunc(c.every, func() { c.end(key, w) })
	c.mu.Unlock()
	c.emit(r)
}

// end ends w's interval: it logs the count, if any, and starts the next interval, or
// forgets the key.
func (c *collapser) end(key string, w *window) {
	c.mu.Lock()
	if c.stopped || c.windows[key] != w {
		c.mu.Unlock()
		return
	}
	if w.n == 0 {
		delete(c.windows, key)
		c.mu.Unlock()
		return
	}
	r := c.summary(w)
	w.timer.Reset(c.every)
	c.mu.Unlock()
	c.emit(r)
}

// summary returns w's last record with its count, and resets the count.
func (c *collapser) summary(w *window) slog.Record {
	r := w.last.Clone()
	r.AddAttrs(slog.Int("repeated", w.n), slog.Duration("interval", c.every))
	w.n = 0
	return r
}

// stop logs the pending counts; afterwards log counts nothing and logs nothing new.
func (c *collapser) stop() { c.flush(true) }

// flush logs the pending counts and ends every interval, so that the next record of
// each key is logged at once; with stop, log logs nothing afterwards.
func (c *collapser) flush(stop bool) {
	c.mu.Lock()
	var pending []slog.Record
	for key, w := range c.windows {
		w.timer.Stop()
		if w.n > 0 {
			pending = append(pending, c.summary(w))
		}
		delete(c.windows, key)
	}
	c.stopped = c.stopped || stop
	c.mu.Unlock()
	slices.SortFunc(pending, func(a, b slog.Record) int { return a.Time.Compare(b.Time) })
	for _, r := range pending {
		c.emit(r)
	}
}
