//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package filecache

import (
	"errors"
)

// supported is false where the driver has no flock(2): New refuses to open a directory
// there rather than give up the cross-process promise.
const supported = false

// No open flags: New refuses to run here anyway.
const (
	openNoFollow = 0
	openNonblock = 0
)

func flock(int, bool) error { return errors.ErrUnsupported }
