//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package filecache

import (
	"errors"
	"syscall"
)

const supported = true

// flock takes (exclusive) or drops the flock(2) lock on the file fd, retrying when a signal
// interrupts the wait.
func flock(fd int, exclusive bool) error {
	how := syscall.LOCK_UN
	if exclusive {
		how = syscall.LOCK_EX
	}
	for {
		err := syscall.Flock(fd, how)
		if !errors.Is(err, syscall.EINTR) {
			return err
		}
	}
}
