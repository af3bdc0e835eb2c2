//go:build !unix

package redistest

import "os"

// No SIGSTOP here: SentinelGroup.Pause and Resume return an error.
var sigStop, sigCont os.Signal
