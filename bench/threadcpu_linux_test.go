//go:build linux

package bench

import (
	"runtime"
	"time"

	"golang.org/x/sys/unix"
)

// threadCPU returns the CPU time the calling thread has used, and true. Between
// lockThread and unlock, the calling goroutine runs on that thread alone, so that the
// difference between two readings is what the goroutine's own code and system calls
// cost (go-redis's writes and reads, allocation and GC assists included; background
// GC work on other threads not).
func threadCPU() (time.Duration, bool) {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		return 0, false
	}
	return time.Duration(ts.Nano()), true
}

// lockThread wires the calling goroutine to its thread, for threadCPU; call the
// returned func to undo it.
func lockThread() func() {
	runtime.LockOSThread()
	return runtime.UnlockOSThread
}
