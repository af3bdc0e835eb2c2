package pgtest

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// stopTree stops pid with SIGSTOP, waits until the kernel reports it stopped, then stops
// every process whose parent it is. It returns the processes it stopped (pid first), also
// on an error, so that they can be resumed.
func stopTree(pid int) ([]int, error) {
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		return nil, fmt.Errorf("SIGSTOP %d: %w", pid, err)
	}
	stopped := []int{pid}
	// kill(2) returns before the signal is delivered: until the postmaster is really
	// stopped it may still fork a backend that a list read now would miss.
	deadline := time.Now().Add(5 * time.Second)
	for {
		st, _, err := procStat(pid)
		if err != nil {
			return stopped, err
		}
		if st == 'T' || st == 't' {
			break
		}
		if time.Now().After(deadline) {
			return stopped, fmt.Errorf("process %d not stopped 5s after SIGSTOP (state %c)", pid, st)
		}
		time.Sleep(time.Millisecond)
	}
	kids, err := children(pid)
	if err != nil {
		return stopped, err
	}
	for _, k := range kids {
		if err := syscall.Kill(k, syscall.SIGSTOP); err != nil {
			if errors.Is(err, syscall.ESRCH) {
				continue // exited since the list was read
			}
			return stopped, fmt.Errorf("SIGSTOP %d: %w", k, err)
		}
		stopped = append(stopped, k)
	}
	return stopped, nil
}

// contAll resumes pids with SIGCONT, the children before the parent (pids[0]); a process
// that has exited is skipped.
func contAll(pids []int) error {
	var errs []error
	for i := len(pids) - 1; i >= 0; i-- {
		if err := syscall.Kill(pids[i], syscall.SIGCONT); err != nil && !errors.Is(err, syscall.ESRCH) {
			errs = append(errs, fmt.Errorf("SIGCONT %d: %w", pids[i], err))
		}
	}
	return errors.Join(errs...)
}

// children returns the processes whose parent is pid, from /proc/<n>/stat.
func children(pid int) ([]int, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	var kids []int
	for _, e := range ents {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if _, ppid, err := procStat(n); err == nil && ppid == pid {
			kids = append(kids, n)
		}
	}
	return kids, nil
}

// procStat returns a process's state and parent from /proc/<pid>/stat.
func procStat(pid int) (state byte, ppid int, err error) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0, 0, err
	}
	// pid (comm) state ppid ...; comm may hold spaces and parentheses: cut at the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("/proc/%d/stat: %q", pid, b)
	}
	f := bytes.Fields(b[i+1:])
	if len(f) < 2 || len(f[0]) != 1 {
		return 0, 0, fmt.Errorf("/proc/%d/stat: %q", pid, b)
	}
	ppid, err = strconv.Atoi(string(f[1]))
	return f[0][0], ppid, err
}
