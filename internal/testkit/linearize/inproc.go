package linearize

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cachekit/cache"
	"github.com/cachekit/cache/internal/testkit/faultrun"
)

// InProcess runs clients as goroutines of this process on one cache: the runner of the
// in-process drivers (memory, lru), which have no network to break and no store process
// to pause or restart: see [InProcess.Faults].
type InProcess struct {
	t       testing.TB
	job     Job // Keys, Epoch, Racy, Think; Base is set here
	c       *cache.Cache
	dir     string
	clients []*inClient
	wg      sync.WaitGroup
	stop    atomic.Bool
	sched   faultrun.Schedule
}

type inClient struct {
	cl   *Client
	path string
}

// NewInProcess returns the runner of job's clients on c.
func NewInProcess(t testing.TB, c *cache.Cache, job Job) *InProcess {
	job.Base = faultrun.Mono()
	return &InProcess{t: t, job: job, c: c, dir: t.TempDir()}
}

// Start starts n client goroutines.
func (p *InProcess) Start(n int) {
	p.t.Helper()
	for i := range n {
		ic := &inClient{path: filepath.Join(p.dir, fmt.Sprintf("client-%03d.jsonl", i+1))}
		rec, err := NewRecorder(ic.path, i+1)
		if err != nil {
			p.t.Fatal(err)
		}
		ic.cl = p.job.client(p.c, rec)
		p.clients = append(p.clients, ic)
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			for !p.stop.Load() {
				ic.cl.Step(context.Background())
			}
		}()
	}
}

// Faults returns the in-process faults, perturbations of the scheduler (the in-process
// drivers ignore a context's end: an operation runs to its end once called):
// "gomaxprocs" (GOMAXPROCS 1: every goroutine on one thread, preempted wherever it is,
// inside the driver's critical sections included) and "gc" (garbage collections back
// to back, each with its stop-the-world pauses).
func (p *InProcess) Faults() []faultrun.Fault {
	return []faultrun.Fault{
		{Kind: "gomaxprocs", Weight: 2, Do: func(d time.Duration) {
			prev := runtime.GOMAXPROCS(1)
			time.Sleep(d)
			runtime.GOMAXPROCS(prev)
		}},
		{Kind: "gc", Weight: 1, Do: func(d time.Duration) {
			for end := time.Now().Add(d); time.Now().Before(end); {
				runtime.GC()
				time.Sleep(time.Millisecond)
			}
		}},
	}
}

// Run applies a random schedule of faults for dur, as [faultrun.Schedule.Run].
func (p *InProcess) Run(dur time.Duration, faults []faultrun.Fault) {
	p.sched.Run(dur, faults, nil)
}

// FaultCounts returns how many faults of each kind were applied.
func (p *InProcess) FaultCounts() map[string]int { return p.sched.Faults() }

// Finish stops the clients and returns their records.
func (p *InProcess) Finish() []Record {
	p.t.Helper()
	p.stop.Store(true)
	p.wg.Wait()
	paths := make([]string, len(p.clients))
	for i, ic := range p.clients {
		if err := ic.cl.Rec.Close(); err != nil {
			p.t.Fatal(err)
		}
		paths[i] = ic.path
	}
	recs, err := ReadHistories(paths)
	if err != nil {
		p.t.Fatal(err)
	}
	return recs
}
