//go:build unix

package pgtest

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"syscall"
)

// runAs is who initdb and postgres run as: nil for this process's user.
type runAs = *syscall.Credential

// asPostgres returns the postgres user when this process runs as root (PostgreSQL
// refuses root), with dir handed over to it; nil otherwise.
func asPostgres(dir string) (runAs, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root, and PostgreSQL refuses root, but there is no user \"postgres\" to run it as: %w", err)
	}
	uid, err := strconv.Atoi(u.Uid)
	if err != nil {
		return nil, err
	}
	gid, err := strconv.Atoi(u.Gid)
	if err != nil {
		return nil, err
	}
	if err := os.Chown(dir, uid, gid); err != nil {
		return nil, err
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// setProc makes cmd run as who, and be stopped by the kernel with the test binary
// (on Linux).
func setProc(cmd *exec.Cmd, who runAs) {
	cmd.SysProcAttr = sysProcAttr()
	cmd.SysProcAttr.Credential = who
}

// quit asks the postmaster for an immediate shutdown (SIGQUIT).
func quit(p *os.Process) error { return p.Signal(syscall.SIGQUIT) }
