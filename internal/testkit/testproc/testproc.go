// Package testproc is the plumbing that the test packages which start servers
// (internal/testkit/redistest, internal/testkit/pgtest) share: one registry of what to stop at the end
// of a test binary, one allocator of free loopback ports (so that two packages in one
// binary never hand out the same port), whether the run is in CI, and the tail of a
// server's log for an error message. It also holds what starting a server has in
// common whatever the server: the process started, reaped and waited for until it
// answers ([Proc]), the servers a package's tests share, started on first use
// ([Shared]), and the rule for a server that cannot be had: a failure in CI, a skip
// elsewhere ([Missing], [Server.Use]). Each server package keeps only what is its
// server's: its arguments, its readiness probe and its way to stop.
package testproc

import (
	"errors"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
)

var (
	mu       sync.Mutex
	stoppers []func()         // everything started, in order
	ports    = map[int]bool{} // ports handed out in this process, never handed out twice
)

// OnStop registers f to run at [StopAll].
func OnStop(f func()) {
	mu.Lock()
	stoppers = append(stoppers, f)
	mu.Unlock()
}

// StopAll runs what OnStop registered, the last registered first, and forgets it.
func StopAll() {
	mu.Lock()
	s := stoppers
	stoppers = nil
	mu.Unlock()
	for i := len(s) - 1; i >= 0; i-- {
		s[i]()
	}
}

// Main runs a test binary's tests, then [StopAll], and exits with the tests' exit code.
func Main(m *testing.M) {
	code := m.Run()
	StopAll()
	os.Exit(code)
}

// InCI reports whether the CI environment variable is set (to anything but "", "false"
// or "0"): then a missing server fails a test instead of skipping it.
func InCI() bool {
	v := os.Getenv("CI")
	return v != "" && v != "false" && v != "0"
}

// FreePort returns a loopback TCP port that nothing listens on now and that this process
// has not handed out before.
func FreePort() (int, error) {
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		mu.Lock()
		used := ports[port]
		ports[port] = true
		mu.Unlock()
		if !used {
			return port, nil
		}
	}
	return 0, errors.New("no free loopback port")
}

// Tail returns the last 800 bytes of a log, trimmed, or "(no output)".
func Tail(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 800 {
		s = s[len(s)-800:]
	}
	if s == "" {
		return "(no output)"
	}
	return s
}
