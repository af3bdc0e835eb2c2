package nemesis

import (
	"testing"
	"time"

	"github.com/cachekit/cache/internal/testkit/faultrun"
)

// TestNegativeControl proves that the checker sees overlaps when there are some: two
// holders that do not exclude each other must produce overlaps that Check reports. On
// the file driver, without faults but pauses of holders:
//
//   - ModeRacy, a get-then-set "lock" (Has, then Set): two holders see the key free
//     and both go in;
//   - ModeIgnoreLease, the real lock whose holder acts until its work is done whatever
//     its lease says: its work is often longer than the TTL, so the lock runs out
//     (without AutoExtend) or a paused holder's renewal fails, and another holder takes
//     the key while it still acts.
func TestNegativeControl(t *testing.T) {
	for _, mode := range []string{ModeRacy, ModeIgnoreLease} {
		t.Run(mode, func(t *testing.T) {
			job := baseJob(faultrun.TargetFile, t.TempDir())
			job.Mode = mode
			r := run(t, "control "+mode, job, nil, 4*time.Second, func(h *Harness) []Fault {
				return []Fault{h.PauseHolder()}
			})
			r.log(t)
			if len(r.report.Overlaps) == 0 {
				t.Errorf("%s: the checker found no overlap in %d sections of a lock that does not exclude", mode, r.report.Sections)
			}
		})
	}
}
