//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package filecache

import (
	"errors"
	"syscall"
)

const supported = true

// The flags every read of a file in Dir opens with: a symbolic link is never followed,
// and a named pipe or a device never blocks the open (see openRegular).
const (
	openNoFollow = syscall.O_NOFOLLOW
	openNonblock = syscall.O_NONBLOCK
)

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
