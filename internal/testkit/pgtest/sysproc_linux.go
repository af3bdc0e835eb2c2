package pgtest

import "syscall"

// sysProcAttr makes the kernel stop a postmaster (SIGQUIT: immediate shutdown) when the
// test binary dies, so that a test binary killed by a timeout leaves no server behind.
// Go sets the parent-death signal after the credentials, which would otherwise clear it.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGQUIT}
}
