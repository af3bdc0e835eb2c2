//go:build race

package token

func init() { raceEnabled = true } // the race detector's instrumentation allocates
