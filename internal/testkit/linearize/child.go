package linearize

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cachekit/cache"
	"github.com/cachekit/cache/drivers/filecache"
	"github.com/cachekit/cache/drivers/pgcache"
	"github.com/cachekit/cache/drivers/rediscache"
	"github.com/cachekit/cache/internal/testkit/faultproxy"
)

// Env is the environment variable that carries a client process's [Job], as JSON.
const Env = "CACHEKIT_LINEARIZE_JOB"

// Targets: the store the clients share.
const (
	TargetFile     = "file"     // Job.Addr: the cache directory
	TargetRedis    = "redis"    // Job.Addr: host:port of a single node
	TargetCluster  = "cluster"  // Job.Addr: host:port of the nodes, comma-separated
	TargetSentinel = "sentinel" // Job.Addr: host:port of the Sentinels, comma-separated; Job.Master
	// TargetPostgres: Job.Addr is the server's URL (postgres://user@host:port/db?...); the
	// client dials the route of its host:port instead.
	TargetPostgres = "postgres"
)

// Job is what a client process does.
type Job struct {
	Target string `json:"target"`
	Addr   string `json:"addr"`
	Master string `json:"master,omitempty"` // the Sentinel master name
	Routes string `json:"routes,omitempty"` // faultproxy.EncodeRoutes: the client's dials go to its proxies
	Prefix string `json:"prefix,omitempty"`
	Client int    `json:"client"`
	Out    string `json:"out"` // the history file
	// Keys, Epoch, Base, Racy, OpTimeout and Think are the Client's fields.
	Keys      int           `json:"keys"`
	Epoch     time.Duration `json:"epoch"`
	Base      int64         `json:"base"`
	Racy      bool          `json:"racy,omitempty"`
	OpTimeout time.Duration `json:"op_timeout,omitempty"`
	Think     time.Duration `json:"think,omitempty"`
	// NoRetry turns off go-redis's retries of every command that failed after it was
	// sent (MaxRetries -1; on a Cluster, MaxRedirects -1 too, which also stops MOVED and
	// ASK from being followed: the test's Cluster never moves a slot). By default
	// go-redis sends a read, or a write whose repetition is harmless, again after a
	// connection lost or a read timeout; the driver's other writes it never sends twice.
	NoRetry bool `json:"no_retry,omitempty"`
}

// ChildMain runs this process's job and exits if this process is a client ([Env] is
// set), and returns otherwise. The package's TestMain calls it first.
func ChildMain() {
	raw := os.Getenv(Env)
	if raw == "" {
		return
	}
	var job Job
	if err := json.Unmarshal([]byte(raw), &job); err != nil {
		fmt.Fprintln(os.Stderr, "linearize client: job:", err)
		os.Exit(2)
	}
	if err := runChild(job); err != nil {
		fmt.Fprintf(os.Stderr, "linearize client %d (pid %d): %v\n", job.Client, os.Getpid(), err)
		os.Exit(1)
	}
	os.Exit(0)
}

// quietLogger drops go-redis's log lines: it logs every failed dial, and the faults
// make many.
type quietLogger struct{}

func (quietLogger) Printf(context.Context, string, ...any) {}

func runChild(job Job) error {
	redis.SetLogger(quietLogger{})
	rec, err := NewRecorder(job.Out, job.Client)
	if err != nil {
		return err
	}
	defer rec.Close()
	c, closeCache, err := OpenCache(job)
	if err != nil {
		return err
	}
	defer closeCache()
	// The parent ends the run by closing stdin: finish the operation under way, then
	// stop.
	stop := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		close(stop)
	}()
	fmt.Println("ready")
	cl := job.client(c, rec)
	for {
		select {
		case <-stop:
			return rec.Err()
		default:
		}
		cl.Step(context.Background())
		if err := rec.Err(); err != nil {
			return err
		}
	}
}

// client is the Client that runs job on c, recording to rec.
func (job Job) client(c *cache.Cache, rec *Recorder) *Client {
	return &Client{C: c, Rec: rec, Keys: job.Keys, Epoch: job.Epoch, Base: job.Base, Racy: job.Racy, OpTimeout: job.OpTimeout, Think: job.Think}
}

// OpenCache opens a cache on job's target, its Redis and PostgreSQL dials through its
// routes. The Redis clients are on go-redis's defaults (a command waits for its read
// timeout, 3 s, whatever its ctx), as an application's would be, but for Job.NoRetry.
func OpenCache(job Job) (*cache.Cache, func(), error) {
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
		retries := 0 // go-redis's default
		if job.NoRetry {
			retries = -1
		}
		var client redis.UniversalClient
		switch job.Target {
		case TargetRedis:
			client = redis.NewClient(&redis.Options{Addr: addrs[0], Dialer: dial, MaxRetries: retries})
		case TargetCluster:
			client = redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs, Dialer: dial, MaxRetries: retries, MaxRedirects: retries})
		case TargetSentinel:
			client = redis.NewFailoverClient(&redis.FailoverOptions{MasterName: job.Master, SentinelAddrs: addrs, Dialer: dial, MaxRetries: retries})
		}
		rd, err := rediscache.New(rediscache.Options{Client: client})
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
// client's route to it: pgx then dials the client's proxy.
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
