package testproc

import (
	"errors"
	"os/exec"
	"sync"
	"testing"
	"time"
)

// Proc is a server process: started, reaped by a goroutine of its own (the one
// goroutine a running server costs), and waited for until it is ready.
type Proc struct {
	Cmd  *exec.Cmd
	Done chan struct{} // closed when the process has exited
}

// Start starts cmd and reaps it once it exits.
func Start(cmd *exec.Cmd) (*Proc, error) {
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &Proc{Cmd: cmd, Done: make(chan struct{})}
	go p.wait()
	return p, nil
}

// wait reaps the process.
func (p *Proc) wait() {
	_ = p.Cmd.Wait()
	close(p.Done)
}

// errExited is WaitReady's error when the process exits before it is ready.
var errExited = errors.New("exited at start")

// WaitReady calls ready every poll until it returns nil, and returns nil then. It
// returns an error that says "exited at start" if the process exits first, and one that
// says notReady ("does not answer PING") if ready has not succeeded within the given
// time; the caller stops the process, and says which server on which port, and what its
// log says.
func (p *Proc) WaitReady(ready func() error, poll, within time.Duration, notReady string) error {
	deadline := time.Now().Add(within)
	for {
		if ready() == nil {
			return nil
		}
		select {
		case <-p.Done:
			return errExited
		case <-time.After(poll):
		}
		if time.Now().After(deadline) {
			return errors.New(notReady)
		}
	}
}

// Missing ends a test that needs a server it cannot have: in CI ([InCI]) it fails tb
// with ciMsg, since there every test must run; elsewhere it skips tb with skipMsg.
func Missing(tb testing.TB, ciMsg, skipMsg string) {
	tb.Helper()
	if InCI() {
		tb.Fatal(ciMsg)
	}
	tb.Skip(skipMsg)
}

// Server is a server that the tests of a binary share, or why there is none.
type Server struct {
	URL   string
	Kind  string // where it comes from: the package's Kind constants
	Owned bool   // started by the package, rather than given by the environment
	Err   error  // why there is no server
	Skip  bool   // Err is a reason to skip the test (outside CI), not to fail it
}

// Use returns the server's URL; without a server, it skips tb (Server.Skip) or fails
// it, with prefix (the package's name) and Err.
func (s *Server) Use(tb testing.TB, prefix string) string {
	tb.Helper()
	switch {
	case s.Err != nil && s.Skip:
		tb.Skipf("%s: %v", prefix, s.Err)
	case s.Err != nil:
		tb.Fatalf("%s: %v", prefix, s.Err)
	}
	return s.URL
}

// Shared is the servers that a package's tests share, each started on first use, at
// most once per test binary. One mutex guards them all, held while one starts. The zero
// Shared is ready to use.
type Shared struct {
	mu      sync.Mutex
	servers map[string]*Server
}

// Get returns the shared server name, started with start on first use.
func (sh *Shared) Get(name string, start func() *Server) *Server {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	s := sh.servers[name]
	if s == nil {
		s = start()
		if sh.servers == nil {
			sh.servers = map[string]*Server{}
		}
		sh.servers[name] = s
	}
	return s
}

// Kind returns the Kind of the shared server name: "" before its first use, or when
// there is none.
func (sh *Shared) Kind(name string) string {
	if s := sh.Started(name); s != nil {
		return s.Kind
	}
	return ""
}

// Started returns the shared server name, or nil before its first use.
func (sh *Shared) Started(name string) *Server {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return sh.servers[name]
}
