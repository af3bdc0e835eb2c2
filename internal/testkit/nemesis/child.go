package nemesis

import (
	"context"
	"errors"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/cachekit/cache"
	"github.com/cachekit/cache/internal/testkit/faultrun"
)

// Env is the environment variable that carries a holder process's [Job], as JSON.
const Env = "CACHEKIT_NEMESIS_JOB"

// Modes of a holder.
const (
	// ModeLock: the lock as it is meant to be used: act only while the lease is valid.
	ModeLock = "lock"
	// ModeIgnoreLease: a negative control. It takes the real lock but acts until its
	// work time is up, whatever its ctx and lease say.
	ModeIgnoreLease = "ignore-lease"
	// ModeRacy: a negative control. A get-then-set "lock" (Has, then Set): two holders
	// can both see the key free and both go in.
	ModeRacy = "racy"
)

// Job is what a holder process does.
type Job struct {
	Mode   string `json:"mode"`
	Target string `json:"target"`           // a faultrun.Target constant
	Addr   string `json:"addr"`             // as faultrun.Store.Addr
	Master string `json:"master,omitempty"` // the Sentinel master name
	// LockReplicas is rediscache.Options.LockReplicas (Sentinel).
	LockReplicas int    `json:"lock_replicas,omitempty"`
	Routes       string `json:"routes,omitempty"` // faultproxy.EncodeRoutes: the holder's dials go to its proxies
	Prefix       string `json:"prefix,omitempty"`
	Holder       int    `json:"holder"`
	Out          string `json:"out"` // the history file
	Keys         int    `json:"keys"`
	// The random options: TTL in [MinTTL, MaxTTL]; Wait 0 or up to MaxWait.
	MinTTL  time.Duration `json:"min_ttl"`
	MaxTTL  time.Duration `json:"max_ttl"`
	MaxWait time.Duration `json:"max_wait"`
	// AcquireTimeout, if set, bounds each Lock call until fn starts (the acquisition and
	// its waiting): the ctx given to LockWith is cancelled after it, unless fn is running
	// by then. It stands in for a client's read timeout where the client has none: pgx
	// waits for a reply as long as its ctx lets it, and a request that a black hole ate
	// would otherwise be waited for forever.
	AcquireTimeout time.Duration `json:"acquire_timeout,omitempty"`
}

// ChildMain runs this process's job and exits if this process is a holder ([Env] is
// set), and returns otherwise. The package's TestMain calls it first.
func ChildMain() {
	faultrun.ChildMain(Env, "nemesis holder", func(job Job) int { return job.Holder }, runChild)
}

func runChild(job Job) error {
	rec, err := NewRecorder(job.Out, job.Holder)
	if err != nil {
		return err
	}
	defer rec.CloseFile()
	c, closeCache, err := faultrun.OpenCache(faultrun.Store{Target: job.Target, Addr: job.Addr, Master: job.Master,
		Routes: job.Routes, Prefix: job.Prefix, LockReplicas: job.LockReplicas})
	if err != nil {
		return err
	}
	defer closeCache()
	// The parent ends the run by closing stdin: finish the section under way, then stop.
	h := &holder{job: job, c: c, rec: rec}
	err = faultrun.Serve(func() error {
		if err := h.round(context.Background()); err != nil {
			return err
		}
		return rec.Err()
	})
	if err != nil {
		return err
	}
	rec.Summary(h.sum)
	return rec.Err()
}

type holder struct {
	job Job
	c   *cache.Cache
	rec *Recorder
	sum Summary
}

// round makes one attempt on a random key with random options.
func (h *holder) round(ctx context.Context) error {
	job := h.job
	key := "k" + strconv.Itoa(rand.N(max(job.Keys, 1)))
	ttl := job.MinTTL + rand.N(job.MaxTTL-job.MinTTL+1)
	var wait time.Duration
	if job.MaxWait > 0 && rand.N(2) == 0 {
		wait = 1 + rand.N(job.MaxWait)
	}
	// Work: mostly within the TTL; one round in three longer, up to 3 TTLs, so that
	// AutoExtend's renewals (and, without it, the lease's end) matter.
	work := rand.N(ttl)
	if rand.N(3) == 0 || job.Mode == ModeIgnoreLease { // the control: always outlive the TTL
		work = ttl + rand.N(2*ttl)
	}
	o := cache.LockOptions{TTL: ttl, Owner: "nemesis." + strconv.Itoa(job.Holder), Wait: wait, AutoExtend: rand.N(2) == 0, Fencing: true}
	h.sum.Attempts++
	if job.Mode == ModeRacy {
		return h.racy(ctx, key, o, work)
	}
	opened, noAction := false, false
	inFn := func() {}
	if job.AcquireTimeout > 0 {
		actx, cancel := context.WithCancelCause(ctx)
		defer cancel(nil)
		t := time.AfterFunc(job.AcquireTimeout, func() { cancel(errAcquireTimeout) })
		defer t.Stop()
		ctx, inFn = actx, func() { t.Stop() } // fired already: fctx is done, fn acts not
	}
	out, err := cache.LockWith(ctx, h.c, key, o, func(fctx context.Context) (struct{}, error) {
		inFn()
		tok := cache.HeldLock(fctx).FencingToken()
		end := time.Now().Add(work)
		for {
			sleepAction()
			t := faultrun.Mono() // the action's instant, read before the checks that allow it
			now := time.Now()
			if job.Mode != ModeIgnoreLease {
				if fctx.Err() != nil {
					break
				}
				until, ok := leaseValidUntil(fctx)
				if !ok || !now.Before(until) {
					break
				}
			}
			if !now.Before(end) {
				break
			}
			if !opened {
				h.rec.Open(t, key, tok, ttl, o.AutoExtend)
				opened = true
			} else {
				h.rec.Act(t)
			}
		}
		noAction = !opened
		return struct{}{}, nil
	})
	lost := errors.Is(err, cache.ErrLockLost)
	if opened {
		h.rec.Close(lost)
	}
	switch {
	case out.Acquired:
		h.sum.Acquired++
		if noAction {
			h.sum.NoAction++
		}
		if lost {
			h.sum.Lost++
		} else if err != nil {
			h.fail(err)
		}
	case err == nil, errors.Is(err, cache.ErrNotAcquired):
		h.sum.NotAcquired++
	default:
		h.fail(err)
	}
	return nil
}

// errAcquireTimeout is the cause of a Lock call cut short by Job.AcquireTimeout.
var errAcquireTimeout = errors.New("acquisition timed out (Job.AcquireTimeout)")

// fail counts a failed Lock and backs off a little: a store that cannot be reached
// fails at once, and a tight loop would starve the others of the CPU.
func (h *holder) fail(err error) {
	h.sum.Errors++
	if h.sum.ErrorKinds == nil {
		h.sum.ErrorKinds = map[string]int{}
	}
	h.sum.ErrorKinds[errorKind(err)]++
	h.rec.Error(err)
	time.Sleep(10*time.Millisecond + rand.N(40*time.Millisecond))
}

// sleepAction is the pause between two actions: a random few milliseconds.
func sleepAction() { time.Sleep(time.Millisecond + rand.N(4*time.Millisecond)) }

// racy is the get-then-set "lock" of ModeRacy: Has, a moment, then Set. It acts while
// its own TTL runs (its lease, were it a lock), so its only flaw is the race.
func (h *holder) racy(ctx context.Context, key string, o cache.LockOptions, work time.Duration) error {
	lk := "racy." + key
	held, err := h.c.Has(ctx, lk)
	if err != nil {
		h.fail(err)
		return nil
	}
	if held {
		h.sum.NotAcquired++
		time.Sleep(time.Millisecond)
		return nil
	}
	time.Sleep(time.Millisecond) // the window between the check and the set
	since := time.Now()
	if err := h.c.Set(ctx, lk, o.Owner, o.TTL); err != nil {
		h.fail(err)
		return nil
	}
	h.sum.Acquired++
	until := since.Add(o.TTL)
	end := time.Now().Add(min(work, o.TTL))
	opened := false
	for {
		sleepAction()
		t := faultrun.Mono()
		now := time.Now()
		if !now.Before(until) || !now.Before(end) {
			break
		}
		if !opened {
			h.rec.Open(t, key, 0, o.TTL, false)
			opened = true
		} else {
			h.rec.Act(t)
		}
	}
	if opened {
		h.rec.Close(false)
	}
	if err := h.c.Remove(ctx, lk); err != nil {
		h.fail(err)
	}
	return nil
}
