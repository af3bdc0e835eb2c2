package drivertest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/cachekit/cache"
	"github.com/cachekit/cache/driver"
)

// The lease protocol under CPU starvation: [LeaseOverlap].

// LeaseSectionsEnv sets the number of sections [LeaseOverlap] records per TTL (default
// 1000). A long run, about a minute per 10,000 sections and driver:
//
//	CACHEKIT_LEASE_SECTIONS=10000 go test -run TestLeaseOverlap -timeout 1h ./drivers/memorycache/
const LeaseSectionsEnv = "CACHEKIT_LEASE_SECTIONS"

// leaseChildEnv carries the job of a process that LeaseOverlap starts: "busy" for a busy
// loop, or a holder's job as JSON.
const leaseChildEnv = "CACHEKIT_LEASE_CHILD"

const (
	leaseHolders = 4 // holders per TTL
	leaseBusy    = 3 // CPU-bound processes beside them
	// leaseHang is a hang detector, not a speed target: 3 minutes per 1,000 sections,
	// which take a few seconds.
	leaseHang = 3 * time.Minute
)

// LeaseTarget is a driver for [LeaseOverlap].
type LeaseTarget struct {
	// Open returns a driver on the store at addr (Store's result). Required.
	Open func(addr string) (driver.Driver, error)
	// Store returns the address of a fresh, empty store for one run of holders: a
	// directory for the file driver. Optional: nil passes "" to Open.
	Store func(t *testing.T) string
	// CrossProcess makes every holder an OS process of its own (the test binary run
	// again, see [LeaseMain]) with its own driver on Store's address, for a store that
	// processes share. Otherwise the holders are goroutines sharing one driver.
	CrossProcess bool
}

// LeaseMain runs the job of a process that [LeaseOverlap] started (a busy loop, or a
// holder of a CrossProcess target) and exits; in any other process it returns at once.
// Call it before anything else in the test binary: from TestMain, or from an init
// function of the driver's tests.
func LeaseMain(tg LeaseTarget) {
	job := os.Getenv(leaseChildEnv)
	switch job {
	case "":
		return
	case "busy":
		busyLoop()
	}
	if err := leaseHolderProcess(tg, job); err != nil {
		fmt.Fprintln(os.Stderr, "lease holder:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// busyLoop says "busy" on stdout, then keeps one CPU busy until its parent closes stdin
// (or dies, which closes it).
func busyLoop() {
	fmt.Println("busy")
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		os.Exit(0)
	}()
	for n := uint64(0); ; n++ {
	}
}

// LeaseOverlap checks the lease a lock gives its holder (see [cache.LockHandle.ValidUntil])
// when the CPU is busy: 4 holders take one lock over and over and act only while
// HeldLock(ctx).ValidUntil() is in the future, beside 3 processes that keep a CPU busy
// each (the test binary run again as a busy loop, stopped at the end). Each holder
// records its sections on the monotonic clock: a section runs from a reading taken after
// the lock was acquired to the last reading that the lease was seen to cover. No two
// sections of different holders may overlap. It runs at TTL 5 ms and 20 ms, with at least
// 1,000 sections each (LeaseSectionsEnv for more).
//
// Most sections are short (up to 200 µs). The others run to the lease's end (one in four
// at TTL 5 ms, one in eight at 20 ms), and half of those then keep fn running past the
// TTL without acting, so that the next holder gets the lock from the store's expiry
// rather than from a release. A store that writes the entry's expiry from a clock that lags behind (a coarse
// clock that stood still while the CPU was busy) lets the next holder in while the lease
// still runs, and this test sees it as an overlap.
func LeaseOverlap(t *testing.T, tg LeaseTarget) {
	n := 1000
	if s := os.Getenv(LeaseSectionsEnv); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 1 {
			t.Fatalf("%s=%q: want a positive number", LeaseSectionsEnv, s)
		}
		n = v
	}
	if tg.CrossProcess && !sharedClockWorks() {
		t.Skip("no monotonic clock shared by processes on " + runtime.GOOS)
	}
	startBusy(t, leaseBusy)
	for _, ttl := range []time.Duration{5 * time.Millisecond, 20 * time.Millisecond} {
		t.Run("ttl="+ttl.String(), func(t *testing.T) {
			t.Parallel()
			addr := ""
			if tg.Store != nil {
				addr = tg.Store(t)
			}
			var (
				sections [][]leaseSection
				err      error
			)
			start := time.Now()
			if tg.CrossProcess {
				sections, err = leaseProcesses(addr, ttl, n)
			} else {
				sections, err = leaseGoroutines(tg, addr, ttl, n)
			}
			if err != nil {
				t.Fatal(err)
			}
			total, overlaps := checkLeaseSections(sections)
			var longest time.Duration
			for _, o := range overlaps {
				longest = max(longest, o.by)
			}
			t.Logf("ttl %v: %d sections by %d holders in %v, beside %d busy processes: %d overlaps (longest %v)",
				ttl, total, len(sections), time.Since(start).Round(time.Millisecond), leaseBusy, len(overlaps), longest)
			if total < n {
				t.Errorf("%d sections, want at least %d", total, n)
			}
			for i, o := range overlaps {
				if i == 5 {
					t.Errorf("... and %d more overlaps", len(overlaps)-i)
					break
				}
				t.Errorf("holder %d's section starts %v before the end of holder %d's", o.second, o.by, o.first)
			}
		})
	}
}

// hangLimit is the hang detector's limit for a run of n sections.
func hangLimit(n int) time.Duration { return leaseHang * time.Duration(max(1, (n+999)/1000)) }

// leaseSection is a holder's section on the shared clock, in nanoseconds.
type leaseSection struct {
	Start int64 `json:"s"`
	End   int64 `json:"e"`
}

type leaseOverlap struct {
	first, second int // holders
	by            time.Duration
}

// checkLeaseSections returns the number of sections and every section that starts before
// the end of another holder's, or at the same instant (in the order of their starts). A holder's own sections
// never overlap, as it records them one after the other.
func checkLeaseSections(byHolder [][]leaseSection) (int, []leaseOverlap) {
	type sec struct {
		leaseSection
		holder int
	}
	var all []sec
	for h, ss := range byHolder {
		for _, s := range ss {
			all = append(all, sec{s, h})
		}
	}
	slices.SortFunc(all, func(a, b sec) int { return int(min(max(a.Start-b.Start, -1), 1)) })
	var out []leaseOverlap
	last := -1 // the section with the latest end so far
	for i, s := range all {
		if last >= 0 && s.Start <= all[last].End && s.holder != all[last].holder {
			out = append(out, leaseOverlap{first: all[last].holder, second: s.holder, by: time.Duration(all[last].End - s.Start)})
		}
		if last < 0 || s.End > all[last].End {
			last = i
		}
	}
	return len(all), out
}

// leaseHolder takes the lock key over and over until it has recorded n sections.
type leaseHolder struct {
	c     *cache.Cache
	key   string
	ttl   time.Duration
	n     int
	rng   *rand.Rand
	stamp func() (shared int64, now time.Time) // shared is read before now
}

// full is the share of sections that run to the lease's end: 1 ms of the TTL, between
// one in eight and one in four. A short lease leaves another holder a short window to get
// in early, so more of its sections must be there to see it.
func (h *leaseHolder) full() float64 {
	return min(0.25, max(0.125, float64(time.Millisecond)/float64(h.ttl)))
}

func (h *leaseHolder) run(ctx context.Context) ([]leaseSection, error) {
	out := make([]leaseSection, 0, h.n)
	for len(out) < h.n {
		if ctx.Err() != nil {
			return out, fmt.Errorf("%d of %d sections when the hang detector ran out", len(out), h.n)
		}
		full := h.rng.Float64() < h.full()
		overstay := full && h.rng.IntN(2) == 0
		short := time.Duration(h.rng.Int64N(int64(200*time.Microsecond) + 1))
		var (
			sec leaseSection
			got bool
		)
		res, err := cache.LockWith(ctx, h.c, h.key, cache.LockOptions{TTL: h.ttl}, func(fctx context.Context) (any, error) {
			lease := cache.HeldLock(fctx).ValidUntil()
			s, now := h.stamp()
			if !now.Before(lease) { // the lease ended before the first step
				return nil, nil
			}
			sec, got = leaseSection{Start: s, End: s}, true
			until := lease
			if !full {
				until = now.Add(short)
			}
			for {
				m, now := h.stamp()
				if !now.Before(lease) {
					break
				}
				sec.End = m
				if !now.Before(until) {
					break
				}
				runtime.Gosched()
			}
			if overstay { // past the TTL: the next holder gets the lock from its expiry
				time.Sleep(time.Until(lease) + h.ttl/2 + 2*time.Millisecond)
			}
			return nil, nil
		})
		switch {
		case err == nil && !res.Acquired: // held by another: try again soon
			time.Sleep(50*time.Microsecond + time.Duration(h.rng.Int64N(int64(200*time.Microsecond))))
			continue
		case err != nil && !errors.Is(err, cache.ErrLockLost): // lost: released after the lease
			return out, err
		}
		if got {
			out = append(out, sec)
		}
	}
	return out, nil
}

// leaseGoroutines runs the holders as goroutines on one driver.
func leaseGoroutines(tg LeaseTarget, addr string, ttl time.Duration, n int) ([][]leaseSection, error) {
	d, err := tg.Open(addr)
	if err != nil {
		return nil, err
	}
	c, err := cache.New(cache.Config{Drivers: map[string]cache.Driver{"d": d}})
	if err != nil {
		_ = d.Close()
		return nil, err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), hangLimit(n))
	defer cancel()
	base := time.Now()
	stamp := func() (int64, time.Time) {
		now := time.Now()
		return int64(now.Sub(base)), now
	}
	out := make([][]leaseSection, leaseHolders)
	errs := make([]error, leaseHolders)
	per := (n + leaseHolders - 1) / leaseHolders
	var wg sync.WaitGroup
	for i := range leaseHolders {
		wg.Go(func() {
			h := &leaseHolder{c: c, key: "lease", ttl: ttl, n: per, rng: rand.New(rand.NewPCG(uint64(i), uint64(time.Now().UnixNano()))), stamp: stamp}
			out[i], errs[i] = h.run(ctx)
		})
	}
	wg.Wait()
	return out, errors.Join(errs...)
}

// leaseJob is a holder process's job.
type leaseJob struct {
	Addr string        `json:"addr"`
	TTL  time.Duration `json:"ttl"`
	N    int           `json:"n"`
	Seed uint64        `json:"seed"`
}

// leaseProcesses runs the holders as processes, each with its own driver on addr.
func leaseProcesses(addr string, ttl time.Duration, n int) ([][]leaseSection, error) {
	ctx, cancel := context.WithTimeout(context.Background(), hangLimit(n))
	defer cancel()
	per := (n + leaseHolders - 1) / leaseHolders
	out := make([][]leaseSection, leaseHolders)
	errs := make([]error, leaseHolders)
	var wg sync.WaitGroup
	for i := range leaseHolders {
		job, _ := json.Marshal(leaseJob{Addr: addr, TTL: ttl, N: per, Seed: uint64(time.Now().UnixNano()) + uint64(i)})
		cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), leaseChildEnv+"="+string(job))
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Start(); err != nil {
			cancel()
			wg.Wait()
			return nil, err
		}
		wg.Go(func() {
			if err := cmd.Wait(); err != nil {
				errs[i] = fmt.Errorf("holder process %d: %v: %s", i, err, bytes.TrimSpace(stderr.Bytes()))
				return
			}
			if err := json.Unmarshal(stdout.Bytes(), &out[i]); err != nil {
				errs[i] = fmt.Errorf("holder process %d: %v: %q", i, err, stdout.String())
			}
		})
	}
	wg.Wait()
	return out, errors.Join(errs...)
}

// leaseHolderProcess is a holder process: it takes the lock until it has recorded its
// sections, and writes them on stdout as JSON, on the clock that processes share.
func leaseHolderProcess(tg LeaseTarget, raw string) error {
	var job leaseJob
	if err := json.Unmarshal([]byte(raw), &job); err != nil {
		return err
	}
	d, err := tg.Open(job.Addr)
	if err != nil {
		return err
	}
	c, err := cache.New(cache.Config{Drivers: map[string]cache.Driver{"d": d}})
	if err != nil {
		_ = d.Close()
		return err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), hangLimit(leaseHolders*job.N))
	defer cancel()
	stamp := func() (int64, time.Time) {
		s := sharedClock()
		return s, time.Now()
	}
	h := &leaseHolder{c: c, key: "lease", ttl: job.TTL, n: job.N, rng: rand.New(rand.NewPCG(job.Seed, job.Seed>>1)), stamp: stamp}
	out, err := h.run(ctx)
	if err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(out)
}

// startBusy starts n processes that keep a CPU busy each until the test ends.
func startBusy(t *testing.T, n int) {
	t.Helper()
	for range n {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), leaseChildEnv+"=busy", "GOMAXPROCS=1")
		stdin, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = stdin.Close()
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		})
		// A test binary that does not call LeaseMain would run no test and exit: the
		// loop would not run, and the test would prove nothing.
		line, err := bufio.NewReader(stdout).ReadString('\n')
		if line != "busy\n" {
			t.Fatalf("the busy process said %q (%v): does the test binary call drivertest.LeaseMain first?", line, err)
		}
	}
}
