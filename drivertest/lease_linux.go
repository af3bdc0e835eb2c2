//go:build linux

package drivertest

import (
	"syscall"
	"unsafe"
)

// sharedClock reads CLOCK_MONOTONIC, which every process on the machine shares (Go's
// monotonic readings count from each process's start), in nanoseconds.
func sharedClock() int64 {
	var ts syscall.Timespec
	const clockMonotonic = 1
	if _, _, errno := syscall.RawSyscall(syscall.SYS_CLOCK_GETTIME, clockMonotonic, uintptr(unsafe.Pointer(&ts)), 0); errno != 0 {
		panic("clock_gettime(CLOCK_MONOTONIC): " + errno.Error())
	}
	return ts.Nano()
}

func sharedClockWorks() bool { return true }
