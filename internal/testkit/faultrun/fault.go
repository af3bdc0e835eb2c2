package faultrun

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Fault is one kind of fault: Do applies it, waits d, and heals it.
type Fault struct {
	Kind   string
	Weight int // relative frequency; 0 counts as 1
	Do     func(d time.Duration)
}

// Window is one fault, from when it was applied to when it was healed, in
// CLOCK_MONOTONIC ns.
type Window struct {
	Kind       string
	Start, End int64
}

// Schedule applies faults and counts them. The zero Schedule is ready to use; its
// methods are safe for concurrent use.
type Schedule struct {
	mu     sync.Mutex
	counts map[string]int
	log    []Window
}

// Run applies a random schedule of faults for dur: one at a time, each for a random
// 50–1500 ms, with a random 0–300 ms of calm between two. Before each, it calls check
// (if not nil), which may fail the test.
func (s *Schedule) Run(dur time.Duration, faults []Fault, check func()) {
	total := 0
	for _, f := range faults {
		total += max(f.Weight, 1)
	}
	deadline := time.Now().Add(dur)
	for time.Now().Before(deadline) {
		if check != nil {
			check()
		}
		if total == 0 {
			time.Sleep(50 * time.Millisecond)
			continue
		}
		n := rand.N(total)
		var f Fault
		for _, f = range faults {
			if n -= max(f.Weight, 1); n < 0 {
				break
			}
		}
		s.Apply(f)
		time.Sleep(rand.N(300 * time.Millisecond))
	}
}

// Apply applies one fault for a random 50–1500 ms, and counts it.
func (s *Schedule) Apply(f Fault) {
	d := 50*time.Millisecond + rand.N(1450*time.Millisecond)
	start := Mono()
	f.Do(d)
	s.mu.Lock()
	if s.counts == nil {
		s.counts = map[string]int{}
	}
	s.counts[f.Kind]++
	s.log = append(s.log, Window{Kind: f.Kind, Start: start, End: Mono()})
	s.mu.Unlock()
}

// Faults returns how many faults of each kind were applied.
func (s *Schedule) Faults() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.counts == nil {
		return map[string]int{}
	}
	return maps.Clone(s.counts)
}

// Windows returns the faults applied, in order.
func (s *Schedule) Windows() []Window {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.log)
}

// FaultString formats the counts of faults by kind.
func FaultString(m map[string]int) string {
	keys := slices.Sorted(maps.Keys(m))
	parts := make([]string, len(keys))
	n := 0
	for i, k := range keys {
		parts[i] = k + " " + strconv.Itoa(m[k])
		n += m[k]
	}
	return fmt.Sprintf("%d faults (%s)", n, strings.Join(parts, ", "))
}

// PauseListener is the fault kind: SIGSTOP the process listening on addr() (a loopback
// host:port, found with [ListenerPID]), SIGCONT it after d. An error fails t.
func PauseListener(t testing.TB, kind string, weight int, addr func() string) Fault {
	return Fault{Kind: kind, Weight: weight, Do: func(d time.Duration) {
		a := addr()
		pid, err := ListenerPID(a)
		if err != nil {
			t.Fatalf("%s: %v", kind, err)
		}
		if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
			t.Fatalf("%s: SIGSTOP %d: %v", kind, pid, err)
		}
		time.Sleep(d)
		if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
			t.Fatalf("%s: SIGCONT %d: %v", kind, pid, err)
		}
	}}
}
