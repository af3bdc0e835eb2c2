package faultrun

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/cachekit/cache"
	"github.com/cachekit/cache/drivers/filecache"
	"github.com/cachekit/cache/drivers/pgcache"
	"github.com/cachekit/cache/drivers/rediscache"
	"github.com/cachekit/cache/internal/testkit/faultproxy"
)

// ChildMain runs this process's job and exits if this process is a child (env is set),
// and returns otherwise. The job is env's JSON, decoded into a J; run runs it. The exit
// code is 0 when run returns nil, 1 when it returns an error and 2 when the job does
// not decode; the error goes to stderr, after name ("nemesis holder") and the child's
// id(job). A suite's TestMain calls it first, through the suite's own ChildMain.
func ChildMain[J any](env, name string, id func(J) int, run func(J) error) {
	raw := os.Getenv(env)
	if raw == "" {
		return
	}
	var job J
	if err := json.Unmarshal([]byte(raw), &job); err != nil {
		fmt.Fprintf(os.Stderr, "%s: job: %v\n", name, err)
		os.Exit(2)
	}
	redis.SetLogger(quietLogger{})
	if err := run(job); err != nil {
		fmt.Fprintf(os.Stderr, "%s %d (pid %d): %v\n", name, id(job), os.Getpid(), err)
		os.Exit(1)
	}
	os.Exit(0)
}

// quietLogger drops go-redis's log lines: it logs every failed dial, and the faults
// make many.
type quietLogger struct{}

func (quietLogger) Printf(context.Context, string, ...any) {}

// Serve is a child's loop: it says "ready" on stdout (its cache is open), then calls
// step until the parent closes its stdin, which ends the run once the step under way
// has returned. It returns step's first error, or nil.
func Serve(step func() error) error {
	stop := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		close(stop)
	}()
	fmt.Println("ready")
	for {
		select {
		case <-stop:
			return nil
		default:
		}
		if err := step(); err != nil {
			return err
		}
	}
}

// Targets: the store a run's children share.
const (
	TargetFile     = "file"     // Store.Addr: the cache directory
	TargetRedis    = "redis"    // Store.Addr: host:port of a single node
	TargetCluster  = "cluster"  // Store.Addr: host:port of the nodes, comma-separated
	TargetSentinel = "sentinel" // Store.Addr: host:port of the Sentinels, comma-separated; Store.Master
	// TargetPostgres: Store.Addr is the server's URL (postgres://user@host:port/db?...);
	// the child dials the route of its host:port instead.
	TargetPostgres = "postgres"
)

// Store is the store a child opens its cache on.
type Store struct {
	Target string // a Target constant
	Addr   string
	Master string // the Sentinel master name
	Routes string // faultproxy.EncodeRoutes: the child's dials go to its proxies
	Prefix string // cache.Config.Prefix
	// LockReplicas is rediscache.Options.LockReplicas, on TargetSentinel.
	LockReplicas int
	// MaxRetries is go-redis's MaxRetries (0: its default; -1: none), and on a Cluster
	// its MaxRedirects too.
	MaxRetries int
}

// OpenCache opens a cache on s, its Redis and PostgreSQL dials through its routes, and
// returns it with the function that closes it and its driver. The Redis clients are on
// go-redis's defaults (ContextTimeoutEnabled false: a command waits for its read
// timeout, 3 s, whatever its ctx), as an application's would be, but for MaxRetries.
func OpenCache(s Store) (*cache.Cache, func(), error) {
	var d cache.Driver
	var closers []func() error
	switch s.Target {
	case TargetFile:
		fd, err := filecache.New(filecache.Options{Dir: s.Addr})
		if err != nil {
			return nil, nil, err
		}
		d = fd
		closers = append(closers, fd.Close)
	case TargetRedis, TargetCluster, TargetSentinel:
		routes, err := faultproxy.DecodeRoutes(s.Routes)
		if err != nil {
			return nil, nil, err
		}
		dial := faultproxy.Dialer(routes)
		addrs := strings.Split(s.Addr, ",")
		var client redis.UniversalClient
		o := rediscache.Options{}
		switch s.Target {
		case TargetRedis:
			client = redis.NewClient(&redis.Options{Addr: addrs[0], Dialer: dial, MaxRetries: s.MaxRetries})
		case TargetCluster:
			client = redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs, Dialer: dial, MaxRetries: s.MaxRetries, MaxRedirects: s.MaxRetries})
		case TargetSentinel:
			client = redis.NewFailoverClient(&redis.FailoverOptions{MasterName: s.Master, SentinelAddrs: addrs, Dialer: dial, MaxRetries: s.MaxRetries})
			o.LockReplicas = s.LockReplicas
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
		u, err := routedURL(s)
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
		return nil, nil, fmt.Errorf("unknown target %q", s.Target)
	}
	closeAll := func() {
		for _, f := range closers {
			_ = f()
		}
	}
	c, err := cache.New(cache.Config{Drivers: map[string]cache.Driver{s.Target: d}, Prefix: s.Prefix})
	if err != nil {
		closeAll()
		return nil, nil, err
	}
	return c, func() { _ = c.Close(); closeAll() }, nil
}

// routedURL returns s.Addr, a PostgreSQL URL, with its host:port replaced by the
// child's route to it: pgx then dials the child's proxy, and every connection of the
// pool (and Watch's listening one) goes through it.
func routedURL(s Store) (string, error) {
	routes, err := faultproxy.DecodeRoutes(s.Routes)
	if err != nil {
		return "", err
	}
	u, err := url.Parse(s.Addr)
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
