package linearize

import (
	"testing"
	"time"

	"github.com/cachekit/cache/internal/testkit/faultrun"
)

// Harness runs client processes on a store and breaks things around them
// ([faultrun.Harness], whose children are clients). It belongs to one test and runs on
// that test's goroutine.
type Harness struct {
	*faultrun.Harness
	t testing.TB
}

// NewHarness returns the harness of a run of job's clients, whose store dials go through
// proxies for targets (none for the file driver). Client, Out and Routes are set for
// each client; Base, if 0, to now.
func NewHarness(t testing.TB, job Job, targets []string) *Harness {
	if job.Base == 0 {
		job.Base = faultrun.Mono()
	}
	return &Harness{t: t, Harness: faultrun.NewHarness(t, faultrun.Config{
		Role:    "client",
		Env:     Env,
		Targets: targets,
		Job: func(id int, out, routes string) any {
			j := job
			j.Client, j.Out, j.Routes = id, out, routes
			return j
		},
		FinishTimeout:   60 * time.Second, // a hang detector: an operation takes at most seconds
		WaitReplacement: true,
	})}
}

// PauseClient is the fault "pause-client": SIGSTOP a random client, SIGCONT it after d.
func (h *Harness) PauseClient() faultrun.Fault { return h.PauseFault() }

// KillClient is the fault "kill-client": SIGKILL a random client, and start its
// replacement (a new client) after d. The operation it was running, if any, is of
// unknown outcome.
func (h *Harness) KillClient() faultrun.Fault { return h.KillFault() }

// Finish ends the run ([faultrun.Harness.Finish]) and returns every client's records,
// killed clients' included.
func (h *Harness) Finish() []Record {
	h.t.Helper()
	recs, err := ReadHistories(h.Harness.Finish())
	if err != nil {
		h.t.Fatal(err)
	}
	return recs
}
