package faultrun

import "golang.org/x/sys/unix"

// Mono returns CLOCK_MONOTONIC in nanoseconds: the clock of the history, the same in
// every process of the host (unlike the monotonic reading of a time.Time, which counts
// from its own process's start).
func Mono() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		panic("faultrun: clock_gettime(CLOCK_MONOTONIC): " + err.Error())
	}
	return ts.Nano()
}
