//go:build !linux

package bench

import "time"

// threadCPU is not measured here: see threadcpu_linux_test.go.
func threadCPU() (time.Duration, bool) { return 0, false }

func lockThread() func() { return func() {} }
