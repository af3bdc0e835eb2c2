package driver

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
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

// Finding is one result of a driver's checks of its store.
//
// A driver that can check the settings of its store against what the cache promises
// (locks that exclude, Once results that stay remembered) has a method
//
//	Doctor(ctx context.Context) []Finding
//
// which cachectl doctor and package cache (for cache.Config.CheckOnStart) discover by
// type assertion (each declares that method set itself). Doctor connects to the store,
// reads its settings and returns one finding per check, SeverityOK included. A store it
// cannot reach is a SeverityError finding (Check "connection"), not a separate error, so
// that the findings are the whole report. It changes nothing on the store. Without it,
// cachectl doctor reports that the driver has no checks. [StartChecks] runs it in the
// background: the cache does at its start with cache.Config.CheckOnStart, and reports
// each warning and error as an event.
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

// Error returns the same text as String: a Finding is an error, so that the cache's
// events carry it in Event.Err (EventFinding, see cache.Config.CheckOnStart), where
// errors.As recovers it.
func (f Finding) Error() string { return f.String() }

// Worst returns the most serious severity among findings, SeverityOK for none.
func Worst(findings []Finding) Severity {
	w := SeverityOK
	for _, f := range findings {
		w = max(w, f.Severity)
	}
	return w
}

// DefaultCheckTimeout bounds the checks that [StartChecks] runs.
const DefaultCheckTimeout = 30 * time.Second

// StartChecks runs checks (a driver's Doctor method, see [Finding]) once, in a goroutine
// of its own, within [DefaultCheckTimeout], and calls fn with each finding that is a
// warning or an error, from that goroutine: the checks the cache runs at its start with
// cache.Config.CheckOnStart. stop cancels the checks and waits for the goroutine; once
// stop returned, fn is not called again. A nil fn starts nothing.
func StartChecks(checks func(context.Context) []Finding, fn func(Finding)) (stop func()) {
	if fn == nil {
		return func() {}
	}
	ctx, cancel := context.WithTimeout(context.Background(), DefaultCheckTimeout)
	var stopped atomic.Bool
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer cancel()
		for _, f := range checks(ctx) {
			if f.Severity != SeverityOK && !stopped.Load() {
				fn(f)
			}
		}
	}()
	return sync.OnceFunc(func() {
		stopped.Store(true)
		cancel()
		<-done
	})
}
