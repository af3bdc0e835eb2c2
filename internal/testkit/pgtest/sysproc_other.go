//go:build !unix

package pgtest

import (
	"os"
	"os/exec"
)

type runAs = *struct{}

func asPostgres(string) (runAs, error) { return nil, nil }

func setProc(*exec.Cmd, runAs) {}

func quit(p *os.Process) error { return p.Kill() }
