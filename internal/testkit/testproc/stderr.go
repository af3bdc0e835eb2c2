package testproc

import (
	"bytes"
	"sync"
)

// Stderr keeps the first MiB that a child process writes to its stderr, for a test's
// messages: the process's copier writes it while the test may read it. Set it as the
// exec.Cmd's Stderr.
type Stderr struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write keeps p while less than a MiB is kept, and drops it after.
func (s *Stderr) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.b.Len() > 1<<20 {
		return len(p), nil
	}
	return s.b.Write(p)
}

// String returns what is kept.
func (s *Stderr) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
