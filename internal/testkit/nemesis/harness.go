package nemesis

import (
	"testing"
	"time"

	"github.com/cachekit/cache/internal/testkit/faultrun"
)

// Fault is one kind of fault: see [faultrun.Fault].
type Fault = faultrun.Fault

// Window is one fault, from when it was applied to when it was healed: see
// [faultrun.Window].
type Window = faultrun.Window

// Harness is the nemesis's side: the holder processes, their proxies, and the faults
// ([faultrun.Harness], whose children are holders). It belongs to one test and runs on
// that test's goroutine.
type Harness struct {
	*faultrun.Harness
	t testing.TB
}

// NewHarness returns the harness of a run of job's holders, whose store dials go
// through proxies for targets. Holder, Out and Routes are set for each holder.
func NewHarness(t testing.TB, job Job, targets []string) *Harness {
	return &Harness{t: t, Harness: faultrun.NewHarness(t, faultrun.Config{
		Role:    "holder",
		Env:     Env,
		Targets: targets,
		Job: func(id int, out, routes string) any {
			j := job
			j.Holder, j.Out, j.Routes = id, out, routes
			return j
		},
		FinishTimeout: 30 * time.Second,
	})}
}

// PauseHolder is the fault "pause-holder": SIGSTOP a random holder, SIGCONT it after d.
func (h *Harness) PauseHolder() Fault { return h.PauseFault() }

// KillHolder is the fault "kill-holder": SIGKILL a random holder, and start its
// replacement (a new holder) after d.
func (h *Harness) KillHolder() Fault { return h.KillFault() }

// Finish ends the run ([faultrun.Harness.Finish]) and returns the history's sections
// and the holders' counts.
func (h *Harness) Finish() ([]Section, Summary) {
	h.t.Helper()
	secs, sum, _, err := Histories(h.Harness.Finish())
	if err != nil {
		h.t.Fatal(err)
	}
	return secs, sum
}
