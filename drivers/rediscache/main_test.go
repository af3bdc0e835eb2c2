package rediscache_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/cachekit/cache/driver"
	"github.com/cachekit/cache/drivers/rediscache"
	"github.com/cachekit/cache/internal/testkit/redistest"
)

func TestMain(m *testing.M) {
	child.Main() // a child process of the cross-process tests runs its job and exits here
	// go-redis logs every failed dial; the outage test makes many on purpose.
	redis.SetLogger(quietLogger{})
	code := m.Run()
	redistest.StopAll()
	if len(setupLog) > 0 {
		fmt.Fprintf(os.Stderr, "go-redis could not set up %d clients, first: %s\n", len(setupLog), setupLog[0])
		code = 1
	}
	// Every driver the tests opened is closed by now: nothing it started may be left.
	if err := goleak.Find(); code == 0 && err != nil {
		fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
		code = 1
	}
	os.Exit(code)
}

// target is a Redis deployment the tests run against.
type target struct {
	name string
	url  func(tb testing.TB) string
}

// targets are a single node and a 3-master Cluster. Tests that run on both loop over
// them; the Cluster skips (outside CI) where there is no redis-server.
var targets = []target{
	{"single", redistest.URL},
	{"cluster", redistest.ClusterURL},
}

// newDriver opens a driver on url, closed at the end of the test.
func newDriver(t *testing.T, o rediscache.Options) *rediscache.Driver {
	t.Helper()
	d, err := rediscache.New(o)
	if err != nil {
		t.Fatalf("rediscache.New: %v", err)
	}
	t.Cleanup(func() { _ = d.Close() })
	return d
}

func harness(url func(testing.TB) string) func(t *testing.T) driver.Driver {
	return func(t *testing.T) driver.Driver {
		return newDriver(t, rediscache.Options{URL: url(t)})
	}
}

func harnessWithTTL(url func(testing.TB) string) func(t *testing.T, ttl time.Duration) driver.Driver {
	return func(t *testing.T, ttl time.Duration) driver.Driver {
		return newDriver(t, rediscache.Options{URL: url(t), DefaultTTL: ttl})
	}
}

// quietLogger drops go-redis's log lines, but keeps those that say a client could not
// set itself up ("failed to initialize ..."), which no test expects: TestMain fails the
// run when there are any.
type quietLogger struct{}

var (
	setupLogMu sync.Mutex
	setupLog   []string
)

func (quietLogger) Printf(_ context.Context, format string, args ...any) {
	if msg := fmt.Sprintf(format, args...); strings.Contains(msg, "failed to initialize") {
		setupLogMu.Lock()
		setupLog = append(setupLog, msg)
		setupLogMu.Unlock()
	}
}
