//go:build unix

package redistest

import "syscall"

// The signals of SentinelGroup.Pause and Resume.
var sigStop, sigCont = syscall.SIGSTOP, syscall.SIGCONT
