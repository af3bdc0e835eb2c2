package nemesis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cachekit/cache"
	"github.com/cachekit/cache/drivers/filecache"
	"github.com/cachekit/cache/drivers/pgcache"
	"github.com/cachekit/cache/drivers/rediscache"
	"github.com/cachekit/cache/internal/testkit/faultproxy"
)

// Env is the environment variable that carries a holder process's [Job], as JSON.
const Env = "CACHEKIT_NEMESIS_JOB"

// Targets: the store the holders share.
const (
	TargetFile     = "file"     // Job.Addr: the cache directory
	TargetRedis    = "redis"    // Job.Addr: host:port of a single node
	TargetCluster  = "cluster"  // Job.Addr: host:port of the nodes, comma-separated
	TargetSentinel = "sentinel" // Job.Addr: host:port of the Sentinels, comma-separated; Job.Master
	// TargetPostgres: Job.Addr is the server's URL (postgres://user@host:port/db?...); the
	// holder dials the route of its host:port instead.
	TargetPostgres = "postgres"
)

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
	Target string `json:"target"`
	Addr   string `json:"addr"`
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
	raw := os.Getenv(Env)
	if raw == "" {
		return
	}
	var job Job
	if err := json.Unmarshal([]byte(raw), &job); err != nil {
		fmt.Fprintln(os.Stderr, "nemesis holder: job:", err)
		os.Exit(2)
	}
	if err := runChild(job); err != nil {
		fmt.Fprintf(os.Stderr, "nemesis holder %d (pid %d): %v\n", job.Holder, os.Getpid(), err)
		os.Exit(1)
	}
	os.Exit(0)
}

// quietLogger drops go-redis's log lines: it logs every failed dial, and the nemesis
// makes many.
type quietLogger struct{}

func (quietLogger) Printf(context.Context, string, ...any) {}

// openCache opens the holder's cache on its target, its Redis dials through its routes.
// The Redis clients are on go-redis's defaults (ContextTimeoutEnabled false: a command
// waits for its read timeout, 3 s, whatever the ctx), as an application's would be.
func openCache(job Job) (*cache.Cache, func(), error) {
	var d cache.Driver
	var closers []func() error
	switch job.Target {
	case TargetFile:
		fd, err := filecache.New(filecache.Options{Dir: job.Addr})
		if err != nil {
			return nil, nil, err
		}
		d = fd
		closers = append(closers, fd.Close)
	case TargetRedis, TargetCluster, TargetSentinel:
		routes, err := faultproxy.DecodeRoutes(job.Routes)
		if err != nil {
			return nil, nil, err
		}
		dial := faultproxy.Dialer(routes)
		addrs := strings.Split(job.Addr, ",")
		var client redis.UniversalClient
		o := rediscache.Options{}
		switch job.Target {
		case TargetRedis:
			client = redis.NewClient(&redis.Options{Addr: addrs[0], Dialer: dial})
		case TargetCluster:
			client = redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs, Dialer: dial})
		case TargetSentinel:
			client = redis.NewFailoverClient(&redis.FailoverOptions{MasterName: job.Master, SentinelAddrs: addrs, Dialer: dial})
			setLockReplicas(&o, job.LockReplicas)
		}
		o.Client = client
		rd, err := rediscache.New(o)
		if err != nil {
			_ = client.Close()
			return nil, nil, err
		}
		d = rd
		closers = append(closers, rd.Close, client.Close)
	case TargetPostgres:
		u, err := routedURL(job)
		if err != nil {
			return nil, nil, err
		}
		pd, err := pgcache.New(pgcache.Options{URL: u})
		if err != nil {
			return nil, nil, err
		}
		d = pd
		closers = append(closers, pd.Close)
	default:
		return nil, nil, fmt.Errorf("unknown target %q", job.Target)
	}
	closeAll := func() {
		for _, f := range closers {
			_ = f()
		}
	}
	c, err := cache.New(cache.Config{Drivers: map[string]cache.Driver{job.Target: d}, Prefix: job.Prefix})
	if err != nil {
		closeAll()
		return nil, nil, err
	}
	return c, func() { _ = c.Close(); closeAll() }, nil
}

// routedURL returns job.Addr, a PostgreSQL URL, with its host:port replaced by the
// holder's route to it: pgx then dials the holder's proxy, and every connection of the
// pool (and Watch's listening one) goes through it.
func routedURL(job Job) (string, error) {
	routes, err := faultproxy.DecodeRoutes(job.Routes)
	if err != nil {
		return "", err
	}
	u, err := url.Parse(job.Addr)
	if err != nil {
		return "", err
	}
	to, ok := routes[u.Host]
	if !ok {
		return "", fmt.Errorf("no route for %s among %v", u.Host, routes)
	}
	u.Host = to
	return u.String(), nil
}

func runChild(job Job) error {
	redis.SetLogger(quietLogger{})
	rec, err := NewRecorder(job.Out, job.Holder)
	if err != nil {
		return err
	}
	defer rec.CloseFile()
	c, closeCache, err := openCache(job)
	if err != nil {
		return err
	}
	defer closeCache()
	// The parent ends the run by closing stdin: finish the section under way, then stop.
	stop := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		close(stop)
	}()
	fmt.Println("ready")
	h := &holder{job: job, c: c, rec: rec}
	for {
		select {
		case <-stop:
			rec.Summary(h.sum)
			return rec.Err()
		default:
		}
		if err := h.round(context.Background()); err != nil {
			return err
		}
		if err := rec.Err(); err != nil {
			return err
		}
	}
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
			t := Mono() // the action's instant, read before the checks that allow it
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
		t := Mono()
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
