package redistest

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cachekit/cache/internal/testkit/testproc"
)

// SentinelMaster is the master name the shared Sentinel monitors.
const SentinelMaster = "mymaster"

// SentinelAddr returns the address of the package's shared Redis Sentinel, which
// monitors a redis-server master of its own under the name [SentinelMaster], starting
// both on first use. Build a client with redis.NewFailoverClient. Without redis-server it
// skips the test outside CI and fails it in CI.
func SentinelAddr(tb testing.TB) string {
	tb.Helper()
	return shared.Get("sentinel", startSentinel).Use(tb, "redistest")
}

func startSentinel() *testproc.Server {
	if Binary() == "" {
		if InCI() {
			return &testproc.Server{Err: errors.New("redis-server is not on PATH; in CI the Sentinel tests must run (install redis-server)")}
		}
		return &testproc.Server{Err: errors.New("no redis-server on PATH: no Redis Sentinel to test against"), Skip: true}
	}
	master, err := startProc(0, nil)
	if err != nil {
		return &testproc.Server{Err: err}
	}
	testproc.OnStop(master.stop)
	s, err := startProcWith(0, func(dir string) []string {
		// Sentinel rewrites its config file: it must exist and be writable.
		conf := filepath.Join(dir, "sentinel.conf")
		_ = os.WriteFile(conf, nil, 0o600)
		return []string{conf, "--sentinel"}
	}, func(string) []string {
		return []string{"--sentinel", "monitor", SentinelMaster, "127.0.0.1", strconv.Itoa(master.port), "1"}
	})
	if err != nil {
		return &testproc.Server{Err: err}
	}
	testproc.OnStop(s.stop)
	// Wait until the Sentinel knows the master.
	deadline := time.Now().Add(10 * time.Second)
	want := strconv.Itoa(master.port)
	for {
		err := command(s.addr(), "SENTINEL get-master-addr-by-name "+SentinelMaster, func(line string) error {
			if !strings.HasPrefix(line, "*2") {
				return fmt.Errorf("reply %q", line)
			}
			return nil
		})
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			return &testproc.Server{Err: fmt.Errorf("Sentinel on %s does not know master %s (port %s): %v", s.addr(), SentinelMaster, want, err)}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return &testproc.Server{URL: s.addr(), Kind: KindRedisServer, Owned: true}
}
