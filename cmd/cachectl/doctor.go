package main

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/cachekit/cache/driver"
)

func init() {
	commands["doctor"] = &command{name: "doctor", usage: "", min: 0, max: 0, store: true, run: cmdDoctor}
}

// Exit codes of doctor: 0 when every check passed, else the worst finding's.
const (
	exitDoctorWarning = 1
	exitDoctorError   = 2
)

// doctorFinding is one line of doctor's report: a driver.Finding and the driver it is
// about.
type doctorFinding struct {
	Driver string `json:"driver"`
	driver.Finding
}

type doctorDoc struct {
	Status   string          `json:"status"` // ok, warning or error: the worst finding
	Findings []doctorFinding `json:"findings"`
}

// cmdDoctor runs the checks of every configured driver (their Doctor method), or of the one
// --driver names, and prints one line per finding.
func cmdDoctor(a *app, s *session, _ []string) int {
	var all []doctorFinding
	var worst driver.Severity
	names := slices.Sorted(maps.Keys(s.drivers))
	if s.flags.driver != "" { // --driver: that one only
		names = []string{s.flags.driver}
	}
	for _, name := range names {
		for _, f := range s.checkDriver(name) {
			all = append(all, doctorFinding{Driver: name, Finding: f})
			worst = max(worst, f.Severity)
		}
	}
	if s.flags.json {
		s.emit(doctorDoc{Status: worst.String(), Findings: all})
	} else {
		for _, f := range all {
			fmt.Fprintf(a.stdout, "%s: %s\n", f.Driver, f.Finding)
		}
		fmt.Fprintf(a.stdout, "doctor: %s\n", summary(all))
	}
	switch worst {
	case driver.SeverityOK:
		return exitOK
	case driver.SeverityWarning:
		return exitDoctorWarning
	}
	return exitDoctorError
}

// doctor is the method set of a driver that checks its store's settings: see
// driver.Finding for what Doctor promises. cachectl is its one consumer, so it is
// declared here rather than in package driver.
type doctor interface {
	Doctor(ctx context.Context) []driver.Finding
}

// checkDriver returns the findings of the driver name.
func (s *session) checkDriver(name string) []driver.Finding {
	d := s.drivers[name]
	doc, ok := d.(doctor)
	if !ok {
		return []driver.Finding{{Check: "checks", Message: fmt.Sprintf("%T has no checks", d)}}
	}
	ctx, cancel := s.ctx()
	defer cancel()
	return doc.Doctor(ctx)
}

// summary counts the findings by severity: "1 error, 2 warnings, 5 ok".
func summary(fs []doctorFinding) string {
	var n [3]int
	for _, f := range fs {
		n[min(int(f.Severity), 2)]++
	}
	plural := func(k int, word string) string {
		if k == 1 {
			return fmt.Sprintf("%d %s", k, word)
		}
		return fmt.Sprintf("%d %ss", k, word)
	}
	return fmt.Sprintf("%s, %s, %d ok", plural(n[2], "error"), plural(n[1], "warning"), n[0])
}
