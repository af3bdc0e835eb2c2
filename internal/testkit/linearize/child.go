package linearize

import (
	"context"
	"time"

	"github.com/cachekit/cache"
	"github.com/cachekit/cache/internal/testkit/faultrun"
)

// Env is the environment variable that carries a client process's [Job], as JSON.
const Env = "CACHEKIT_LINEARIZE_JOB"

// Job is what a client process does.
type Job struct {
	Target string `json:"target"`           // a faultrun.Target constant
	Addr   string `json:"addr"`             // as faultrun.Store.Addr
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
	faultrun.ChildMain(Env, "linearize client", func(job Job) int { return job.Client }, runChild)
}

func runChild(job Job) error {
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
	cl := job.client(c, rec)
	if err := faultrun.Serve(func() error {
		cl.Step(context.Background())
		return rec.Err()
	}); err != nil {
		return err
	}
	return rec.Err()
}

// client is the Client that runs job on c, recording to rec.
func (job Job) client(c *cache.Cache, rec *Recorder) *Client {
	return &Client{C: c, Rec: rec, Keys: job.Keys, Epoch: job.Epoch, Base: job.Base, Racy: job.Racy, OpTimeout: job.OpTimeout, Think: job.Think}
}

// OpenCache opens a cache on job's store ([faultrun.OpenCache]), its Redis and
// PostgreSQL dials through its routes, on go-redis's default options but for
// Job.NoRetry.
func OpenCache(job Job) (*cache.Cache, func(), error) {
	st := faultrun.Store{Target: job.Target, Addr: job.Addr, Master: job.Master, Routes: job.Routes, Prefix: job.Prefix}
	if job.NoRetry {
		st.MaxRetries = -1
	}
	return faultrun.OpenCache(st)
}
