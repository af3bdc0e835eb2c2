//go:build !linux

package drivertest

// sharedClock has no implementation here: the cross-process lease test skips.
func sharedClock() int64 { panic("no shared monotonic clock") }

func sharedClockWorks() bool { return false }
