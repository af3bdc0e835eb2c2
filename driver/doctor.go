package driver

import (
	"context"
	"fmt"
)

// Severity says how much a [Finding] matters.
type Severity uint8

// The severities, from the least to the most serious.
const (
	// SeverityOK: the setting was checked and keeps the cache's promises.
	SeverityOK Severity = iota
	// SeverityWarning: the setting weakens a promise in some circumstances (a restart,
	// a failover), or could not be checked.
	SeverityWarning
	// SeverityError: the setting breaks a promise (locks, Once) or a requirement of the
	// driver, or the store could not be reached.
	SeverityError
)

var severityNames = [...]string{"ok", "warning", "error"}

// String returns "ok", "warning" or "error".
func (s Severity) String() string {
	if int(s) < len(severityNames) {
		return severityNames[s]
	}
	return fmt.Sprintf("severity(%d)", uint8(s))
}

// MarshalText makes a Severity its name in JSON.
func (s Severity) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Finding is one result of a [Doctor]'s checks.
type Finding struct {
	// Severity is how much it matters.
	Severity Severity `json:"severity"`
	// Check names what was checked, in the store's own terms: "maxmemory-policy",
	// "appendonly", "synchronous_commit", "table".
	Check string `json:"check"`
	// Message says what was found and what it means for the cache, in one sentence.
	Message string `json:"message"`
	// Fix says what to change, when there is something to change; else "".
	Fix string `json:"fix,omitempty"`
}

// String returns the finding as one line: "warning appendonly: ... (fix: ...)".
func (f Finding) String() string {
	s := f.Severity.String() + " " + f.Check + ": " + f.Message
	if f.Fix != "" {
		s += " (fix: " + f.Fix + ")"
	}
	return s
}

// Worst returns the most serious severity among findings, SeverityOK for none.
func Worst(findings []Finding) Severity {
	w := SeverityOK
	for _, f := range findings {
		w = max(w, f.Severity)
	}
	return w
}

// Doctor is implemented by drivers that can check the settings of their store against
// what the cache promises (locks that exclude, Once results that stay remembered), as
// cachectl doctor does. Absent: cachectl doctor reports that the driver has no checks.
//
// Doctor connects to the store, reads its settings and returns one finding per check,
// SeverityOK included. A store it cannot reach is a SeverityError finding (Check
// "connection"), not a separate error, so that the findings are the whole report. It
// changes nothing on the store.
type Doctor interface {
	Doctor(ctx context.Context) []Finding
}
