package rediscache_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cachekit/cache"
	"github.com/cachekit/cache/drivers/rediscache"
	"github.com/cachekit/cache/internal/testkit/faultproxy"
	"github.com/cachekit/cache/internal/testkit/nearcheck"
	"github.com/cachekit/cache/internal/testkit/redistest"
)

// The near cache's fault suite: the pieces. Processes (each a driver with its own near
// cache and tracking connection, read by a few goroutines) read a few keys while a
// writer rewrites them through a plain client and each process rewrites a key of its
// own through its near cache; every read and write is recorded with its instants, and
// internal/testkit/nearcheck checks the history. The faults and the runs are in
// near_fault_run_test.go; docs/reliability.md has the figures.

// nearFaultStale is the MaxStaleness of the fault runs.
const nearFaultStale = 100 * time.Millisecond

// nearFaultMaxAge is the MaxAge of the fault runs (the default): the bound on what Redis
// never reports (SWAPDB).
const nearFaultMaxAge = rediscache.DefaultNearMaxAge

// nearFaultOptions are the near cache options of the runs' processes.
func nearFaultOptions() *rediscache.NearOptions {
	return &rediscache.NearOptions{MaxStaleness: nearFaultStale, MaxAge: nearFaultMaxAge}
}

// Keys of the runs: hot keys the writer rewrites every few milliseconds, a cold key it
// writes once per cycle (so that a copy of it lives long, as for SWAPDB), and each
// process's own key.
var (
	nfHot  = []string{"nf.h0", "nf.h1"}
	nfCold = "nf.cold"
)

func nfOwn(proc string) string { return "nf.own." + proc }

// nearHistory records the reads, writes and faults of a run. A long run checks it in
// parts (cut), each carrying the recent writes over.
type nearHistory struct {
	base time.Time

	// gate: writers hold it shared for each write; a fault that writes every key
	// (FLUSHALL, SWAPDB, a restart that loses the data) holds it alone.
	gate sync.RWMutex

	mu      sync.Mutex
	writes  []nearcheck.Write
	reads   []nearcheck.Read
	faults  []nearcheck.Fault
	errors  map[string]int // failed reads and writes, by what failed
	applied map[string]int // faults applied, by kind
	total   nearcheck.Report
	lost    int // writer writes found lost
}

func newNearHistory() *nearHistory {
	return &nearHistory{base: time.Now(), errors: map[string]int{}, applied: map[string]int{}}
}

// now is the history's clock: nanoseconds since the run began (monotonic).
func (h *nearHistory) now() int64 { return int64(time.Since(h.base)) }

func (h *nearHistory) read(r nearcheck.Read) {
	h.mu.Lock()
	h.reads = append(h.reads, r)
	h.mu.Unlock()
}

func (h *nearHistory) write(w nearcheck.Write) {
	h.mu.Lock()
	h.writes = append(h.writes, w)
	h.mu.Unlock()
}

func (h *nearHistory) failed(what string) {
	h.mu.Lock()
	h.errors[what]++
	h.mu.Unlock()
}

// fault runs f as a fault of kind, recorded from its start to its end.
func (h *nearHistory) fault(kind string, f func() error) error {
	start := h.now()
	err := f()
	h.mu.Lock()
	h.faults = append(h.faults, nearcheck.Fault{Kind: kind, Start: start, End: h.now()})
	h.applied[kind]++
	h.mu.Unlock()
	return err
}

// writeAll records a write of v to every key, by a fault holding the gate, from start to
// now.
func (h *nearHistory) writeAll(keys []string, v string, start int64, silent bool) {
	ack := h.now()
	for _, k := range keys {
		h.write(nearcheck.Write{Key: k, Value: v, Start: start, Ack: ack, Silent: silent})
	}
}

// chain checks the value a write of key found in Redis (SET … GET) against the last
// write recorded: if they differ, the writes recorded since prev was written were lost
// (acknowledged by a master that a failover discarded), and are marked uncertain.
func (h *nearHistory) chain(key, prev, cur string) {
	if prev == cur {
		return // an attempt that failed had written it: nothing to tell
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	var after []int
	for i := len(h.writes) - 1; i >= 0; i-- {
		w := h.writes[i]
		if w.Key != key {
			continue
		}
		after = append(after, i)
		if w.Value == prev {
			for _, j := range after[:len(after)-1] {
				h.writes[j].Uncertain = true
			}
			h.lost += len(after) - 1
			return
		}
	}
	if len(after) > 0 || prev != "" { // "": the key's first write
		h.errors["chain: a write found a value the history does not hold"]++
	}
}

// lossy are the faults that may lose acknowledged writes.
var lossy = map[string]bool{"failover": true, "kill": true, "pause": true, "restart-empty": true}

// cut checks what was recorded so far, adds it to the total, and starts over with the
// writes of the last carry and the last write of each key, and the last fault. The reads
// of the last 5 s wait for the next cut: a writer records its write once acknowledged,
// and a read may have returned the value before that.
func (h *nearHistory) cut(t *testing.T, carry time.Duration) nearcheck.Report {
	h.mu.Lock()
	ws, rs, fs := h.writes, h.reads, h.faults
	now := h.now()
	var later []nearcheck.Read
	if carry > 0 {
		rs, later = splitReads(rs, now-int64(5*time.Second))
	}
	h.writes, h.reads = keep(ws, now-int64(carry)), later
	if len(fs) > 0 {
		h.faults = fs[len(fs)-1:]
	}
	h.mu.Unlock()
	ws = uncertainOwn(ws, fs)
	r, err := nearcheck.Check(ws, rs, nearcheck.Options{MaxStaleness: nearFaultStale, MaxAge: nearFaultMaxAge, Faults: fs})
	if err != nil {
		t.Fatal(err)
	}
	h.mu.Lock()
	h.total.Add(r)
	h.mu.Unlock()
	return r
}

// splitReads splits rs into the reads that ended before t and the others.
func splitReads(rs []nearcheck.Read, t int64) (before, after []nearcheck.Read) {
	for _, r := range rs {
		if r.End < t {
			before = append(before, r)
		} else {
			after = append(after, r)
		}
	}
	return before, after
}

// keep is the writes acknowledged after since, and the last write of each key before.
func keep(ws []nearcheck.Write, since int64) []nearcheck.Write {
	last := map[string]int{}
	for i, w := range ws {
		if w.Ack <= since {
			last[w.Key] = i
		}
	}
	var out []nearcheck.Write
	for i, w := range ws {
		if w.Ack > since || last[w.Key] == i {
			out = append(out, w)
		}
	}
	return out
}

// uncertainOwn marks uncertain the processes' own writes (through the near cache, with
// no SET … GET to tell) acknowledged around a fault that may lose writes.
func uncertainOwn(ws []nearcheck.Write, fs []nearcheck.Fault) []nearcheck.Write {
	const margin = int64(time.Second)
	for i, w := range ws {
		for _, f := range fs {
			if w.Proc != "" && lossy[f.Kind] && w.Ack >= f.Start-margin && w.Start <= f.End+margin {
				ws[i].Uncertain = true
			}
		}
	}
	return ws
}

// nearWriter writes the hot keys in turn, and the cold key when asked, with SET … GET
// through a plain client, retrying each value until it is acknowledged.
type nearWriter struct {
	h *nearHistory
	c redis.UniversalClient
	n atomic.Int64
}

// write writes the next value to key.
func (w *nearWriter) write(ctx context.Context, key string) {
	v := strconv.FormatInt(w.n.Add(1), 10)
	w.h.gate.RLock()
	defer w.h.gate.RUnlock()
	start, failed := w.h.now(), false
	for ctx.Err() == nil {
		wctx, cancel := context.WithTimeout(ctx, time.Second)
		prev, err := w.c.Do(wctx, "set", key, v, "get").Text()
		cancel()
		if err == nil || errors.Is(err, redis.Nil) {
			ack := w.h.now()
			w.h.chain(key, prev, v)
			w.h.write(nearcheck.Write{Key: key, Value: v, Start: start, Ack: ack, Failed: failed})
			return
		}
		w.h.failed("write")
		failed = true
		time.Sleep(10 * time.Millisecond)
	}
	w.h.write(nearcheck.Write{Key: key, Value: v, Start: start, Ack: w.h.now(), Uncertain: true, Failed: failed})
}

// run writes the hot keys until ctx ends, one every 2 ms.
func (w *nearWriter) run(ctx context.Context) {
	for i := 0; ctx.Err() == nil; i++ {
		w.write(ctx, nfHot[i%len(nfHot)])
		time.Sleep(2 * time.Millisecond)
	}
}

// nearProc is one process of a run: a driver with its near cache, and the fault proxies
// its connections go through while via is set (each connection chooses when it dials).
type nearProc struct {
	name    string
	h       *nearHistory
	d       *rediscache.Driver
	c       *cache.Cache
	proxies *faultproxy.Set
	via     atomic.Bool
	own     atomic.Int64
}

// dial is the process's dialer: through its proxies while via is set, direct otherwise.
func (p *nearProc) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	if p.via.Load() {
		return p.proxies.Dial(ctx, network, addr)
	}
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
}

// newNearProc starts a process over the client that client makes with the process's
// name (CLIENT SETNAME, to find its connections) and dialer.
func newNearProc(t *testing.T, h *nearHistory, id int, client func(name string, dial func(context.Context, string, string) (net.Conn, error)) redis.UniversalClient) *nearProc {
	t.Helper()
	name := "nf-p" + strconv.Itoa(id)
	p := &nearProc{name: name, h: h, proxies: faultproxy.NewSet()}
	t.Cleanup(func() { _ = p.proxies.Close() })
	rc := client(name, p.dial)
	t.Cleanup(func() { _ = rc.Close() })
	p.d = newDriver(t, rediscache.Options{Client: rc, Near: nearFaultOptions()})
	c, err := cache.New(cache.Config{Drivers: map[string]cache.Driver{"redis": p.d}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	p.c = c
	p.own.Store(int64(id+1) << 40) // the own key's values: unique to the process
	return p
}

// read reads key through the near cache and records it; a failed read is counted.
func (p *nearProc) read(ctx context.Context, key string) {
	start := p.h.now()
	rctx, cancel := context.WithTimeout(ctx, time.Second)
	v, ok, err := cache.GetAs[int64](rctx, p.c, key)
	cancel()
	end := p.h.now()
	if err != nil {
		p.h.failed("read")
		return
	}
	s := ""
	if ok {
		s = strconv.FormatInt(v, 10)
	}
	p.h.read(nearcheck.Read{Key: key, Value: s, Proc: p.name, Start: start, End: end})
}

// writeOwn writes the next value of the process's own key through its near cache,
// retrying until it is acknowledged.
func (p *nearProc) writeOwn(ctx context.Context) {
	v := p.own.Add(1)
	key := nfOwn(p.name)
	p.h.gate.RLock()
	defer p.h.gate.RUnlock()
	start, failed := p.h.now(), false
	for ctx.Err() == nil {
		wctx, cancel := context.WithTimeout(ctx, time.Second)
		err := p.c.Set(wctx, key, v, 0)
		cancel()
		if err == nil {
			p.h.write(nearcheck.Write{Key: key, Value: strconv.FormatInt(v, 10), Proc: p.name, Start: start, Ack: p.h.now(), Failed: failed})
			return
		}
		p.h.failed("own write")
		failed = true
		time.Sleep(10 * time.Millisecond)
	}
	p.h.write(nearcheck.Write{Key: key, Value: strconv.FormatInt(v, 10), Proc: p.name, Start: start, Ack: p.h.now(), Uncertain: true, Failed: failed})
}

// run reads every key in turn until ctx ends, one read every 500 µs; with own, it also
// writes its own key every 50 reads, and reads it right after.
func (p *nearProc) run(ctx context.Context, keys []string, own bool) {
	for i := 0; ctx.Err() == nil; i++ {
		if own && i%50 == 0 {
			p.writeOwn(ctx)
			p.read(ctx, nfOwn(p.name))
		}
		p.read(ctx, keys[i%len(keys)])
		time.Sleep(500 * time.Microsecond)
	}
}

// faultRun is the traffic of a run: a writer and the processes' readers.
type faultRun struct {
	h      *nearHistory
	w      *nearWriter
	procs  []*nearProc
	keys   []string
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// startFaultRun starts the writer and readers readers goroutines per process (the first
// of each also writes the process's own key).
func startFaultRun(h *nearHistory, w redis.UniversalClient, procs []*nearProc, readers int) *faultRun {
	r := &faultRun{h: h, w: &nearWriter{h: h, c: w}, procs: procs}
	r.keys = append(append(r.keys, nfHot...), nfCold)
	for _, p := range procs {
		r.keys = append(r.keys, nfOwn(p.name))
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	r.wg.Go(func() { r.w.run(ctx) })
	for _, p := range procs {
		for i := range readers {
			r.wg.Go(func() { p.run(ctx, r.keys, i == 0) })
		}
	}
	return r
}

// cold writes the cold key.
func (r *faultRun) cold() { r.w.write(context.Background(), nfCold) }

func (r *faultRun) stop() {
	r.cancel()
	r.wg.Wait()
}

// clientIDs are the ids of the connections of a node whose name is name, tracking
// connections (flag P, Pub/Sub) or the others.
func clientIDs(ctx context.Context, c *redis.Client, name string, tracking bool) ([]int64, error) {
	list, err := c.ClientList(ctx).Result()
	if err != nil {
		return nil, err
	}
	var ids []int64
	for _, f := range redistest.ParseClientList(list) {
		if f["name"] != name || strings.Contains(f["flags"], "P") != tracking {
			continue
		}
		id, err := strconv.ParseInt(f["id"], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("CLIENT LIST: id %q", f["id"])
		}
		ids = append(ids, id)
	}
	return ids, nil
}

// killClients kills the connections clientIDs finds.
func killClients(ctx context.Context, c *redis.Client, name string, tracking bool) error {
	ids, err := clientIDs(ctx, c, name, tracking)
	if err != nil {
		return err
	}
	for _, id := range ids {
		if err := c.ClientKillByFilter(ctx, "id", strconv.FormatInt(id, 10)).Err(); err != nil {
			return err
		}
	}
	return nil
}
