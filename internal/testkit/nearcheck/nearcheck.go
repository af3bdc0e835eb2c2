// Package nearcheck checks a history of reads and writes of a few keys against the
// promises of a near cache (a copy of Redis's values kept in process and dropped when
// Redis reports a change):
//
//   - bounded staleness: a read never returns a value that a write acknowledged more
//     than MaxStaleness before the read began had replaced;
//   - bounded age: a value replaced by a write that Redis never reports (SWAPDB, a
//     module writing without keyspace notification) may be returned for at most MaxAge
//     after that write;
//   - monotonic reads: within one process, a read never returns a value older than one
//     that a read of the process which ended before it began returned;
//   - read your writes: a process's read that begins after one of its own writes was
//     acknowledged never returns a value older than that write's.
//
// A write of which an attempt returned an error (Write.Failed) may take effect at any
// later time: the reads of its value after a newer one replaced it are counted apart
// (Report.LateFailedWrites), as none of the violations above.
//
// A history is what the processes observed: each write with the instants it was sent
// and acknowledged, each read with the instants it began and ended, all on one clock
// (nanoseconds). The writes of one key must not overlap in time (one writer per key, or
// writers that take turns, as a nemesis does for a FLUSHALL): their order is the order
// of the versions of the key. [Check] returns a [Report] that counts each kind of
// violation and keeps the worst examples.
//
// docs/reliability.md describes the fault runs that use it and their figures.
package nearcheck

import (
	"cmp"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"
)

// Write is one write of a key, by a writer of the history or by a fault.
type Write struct {
	Key string
	// Value is what the key holds after the write; "" is the key absent (a delete, a
	// flush, data lost).
	Value string
	// Proc is the process that wrote it through its near cache, for the read-your-writes
	// check; "" for another client or a fault.
	Proc string
	// Start and Ack are when the write was sent and when its acknowledgement arrived.
	Start, Ack int64
	// Uncertain marks a write that may not have taken effect, or may have been lost
	// since (acknowledged by a master that a failover then discarded): its value may be
	// read, but it replaces nothing, and going back past it is not a violation.
	Uncertain bool
	// Failed marks a write of which an attempt returned an error (a timeout, a broken
	// connection): that attempt is indeterminate, and its value may take effect at any
	// time after Start, even after later writes, as on any networked store. A read of
	// its value that would otherwise go back in time counts as Report.LateFailedWrites.
	Failed bool
	// Silent marks a write that Redis reports to no near cache (SWAPDB): a copy of the
	// value it replaced is bounded only by MaxAge.
	Silent bool
}

// Read is one read of a key through a near cache.
type Read struct {
	Key   string
	Value string // "" is a miss
	Proc  string // the process (one near cache) that read
	// Start and End are when the read began and when it returned.
	Start, End int64
}

// Options are the promises checked.
type Options struct {
	// MaxStaleness bounds how long after a reported write a read may still return the
	// value the write replaced.
	MaxStaleness time.Duration
	// MaxAge bounds how long after a silent write a read may still return the value it
	// replaced; 0 means no bound is promised, and every such read past MaxStaleness is
	// stale.
	MaxAge time.Duration
	// Faults, if any, are the faults the run applied: Report.ByFault counts each
	// violation under the last fault that began before its read began.
	Faults []Fault
}

// Fault is a fault a run applied, from Start to End.
type Fault struct {
	Kind       string
	Start, End int64
}

// NoFault is the name Report.ByFault gives to the reads that began before any fault.
const NoFault = "none"

// Kind is a kind of violation.
type Kind string

// The kinds of violation.
const (
	// Stale: the read returned a value replaced more than MaxStaleness before it began
	// (or, for a silent write, more than MaxAge before).
	Stale Kind = "stale"
	// NonMonotonic: the read returned a value older than one that an earlier read of
	// the same process returned.
	NonMonotonic Kind = "non-monotonic"
	// MissedOwnWrite: the read returned a value older than the process's own write
	// acknowledged before the read began.
	MissedOwnWrite Kind = "missed own write"
	// Unknown: the read returned a value that no write of the history wrote before the
	// read ended.
	Unknown Kind = "unknown value"
	// Covered is not a violation: in Report.ByFault, the reads that MaxAge covers.
	Covered Kind = "covered by MaxAge"
	// LateFailedWrite is not a violation: in Report.ByFault, the reads of a Failed
	// write's value that landed late (Report.LateFailedWrites).
	LateFailedWrite Kind = "late failed write"
)

// Violation is one read that broke a promise.
type Violation struct {
	Kind Kind
	Read Read
	// By is, for Stale, how long before the read began its value was replaced.
	By time.Duration
	// Behind is, for NonMonotonic and MissedOwnWrite, how many versions older than Due
	// the value read was.
	Behind int
	// Due is the value the read should have returned at least (NonMonotonic,
	// MissedOwnWrite) or the value that replaced the one it returned (Stale).
	Due string
}

func (v Violation) String() string {
	r := v.Read
	switch v.Kind {
	case Stale:
		return fmt.Sprintf("%s: %s read %s=%q %v after %q replaced it", v.Kind, r.Proc, r.Key, r.Value, v.By, v.Due)
	case Unknown:
		return fmt.Sprintf("%s: %s read %s=%q, which no write had written", v.Kind, r.Proc, r.Key, r.Value)
	default:
		return fmt.Sprintf("%s: %s read %s=%q, %d version(s) older than %q", v.Kind, r.Proc, r.Key, r.Value, v.Behind, v.Due)
	}
}

// Report is what Check found.
type Report struct {
	Reads, Writes int
	// Counts is the number of violations of each kind; Examples keeps the first few of
	// each kind, worst staleness first for Stale.
	Counts   map[Kind]int
	Examples map[Kind][]Violation
	// CoveredByMaxAge counts the reads older than MaxStaleness that MaxAge allows: the
	// write that replaced their value was silent, and it was acknowledged at most MaxAge
	// before they began.
	CoveredByMaxAge int
	// Worst is the most that a read, legal or not, began after its value was replaced
	// (0 if none began after); WorstCovered the most among the reads MaxAge covers.
	Worst, WorstCovered time.Duration
	// ByFault counts the violations and the covered reads (Covered) by the fault that
	// preceded their read, and WorstByFault is the most a read began after its value was
	// replaced, by the same fault.
	ByFault      map[string]map[Kind]int
	WorstByFault map[string]time.Duration
	// ReadsByFault counts every read by the fault that preceded it.
	ReadsByFault map[string]int
	// LateFailedWrites counts the reads of a Failed write's value after a newer value
	// replaced it: legal, since an attempt that returned an error may land late. They
	// are no violation, and the monotonic and read-your-writes checks skip them; the
	// reads after them are judged as usual.
	LateFailedWrites int
}

// examplesPerKind bounds Report.Examples.
const examplesPerKind = 5

// Violations is the number of violations of every kind.
func (r Report) Violations() int {
	n := 0
	for _, c := range r.Counts {
		n += c
	}
	return n
}

// Add merges o into r (the reports of successive parts of a long run).
func (r *Report) Add(o Report) {
	r.Reads += o.Reads
	r.Writes += o.Writes
	r.CoveredByMaxAge += o.CoveredByMaxAge
	r.LateFailedWrites += o.LateFailedWrites
	r.Worst = max(r.Worst, o.Worst)
	r.WorstCovered = max(r.WorstCovered, o.WorstCovered)
	for k, n := range o.Counts {
		r.count(k, n)
	}
	for f, m := range o.ByFault {
		for k, n := range m {
			r.countFault(f, k, n)
		}
	}
	for f, w := range o.WorstByFault {
		r.worst(f, w)
	}
	for f, n := range o.ReadsByFault {
		r.readsAfter(f, n)
	}
	for _, vs := range o.Examples {
		for _, v := range vs {
			r.example(v)
		}
	}
}

func (r *Report) count(k Kind, n int) {
	if r.Counts == nil {
		r.Counts = map[Kind]int{}
	}
	r.Counts[k] += n
}

func (r *Report) countFault(f string, k Kind, n int) {
	if r.ByFault == nil {
		r.ByFault = map[string]map[Kind]int{}
	}
	if r.ByFault[f] == nil {
		r.ByFault[f] = map[Kind]int{}
	}
	r.ByFault[f][k] += n
}

func (r *Report) readsAfter(f string, n int) {
	if r.ReadsByFault == nil {
		r.ReadsByFault = map[string]int{}
	}
	r.ReadsByFault[f] += n
}

func (r *Report) worst(f string, by time.Duration) {
	if r.WorstByFault == nil {
		r.WorstByFault = map[string]time.Duration{}
	}
	r.WorstByFault[f] = max(r.WorstByFault[f], by)
}

func (r *Report) example(v Violation) {
	if r.Examples == nil {
		r.Examples = map[Kind][]Violation{}
	}
	ex := append(r.Examples[v.Kind], v)
	if v.Kind == Stale {
		slices.SortStableFunc(ex, func(a, b Violation) int { return cmp.Compare(b.By, a.By) })
	}
	r.Examples[v.Kind] = ex[:min(len(ex), examplesPerKind)]
}

func (r *Report) add(v Violation, f string) {
	r.count(v.Kind, 1)
	r.countFault(f, v.Kind, 1)
	r.example(v)
}

// fault is the kind of the last of faults (sorted by Start) that began before at.
func fault(faults []Fault, at int64) string {
	i, _ := slices.BinarySearchFunc(faults, at, func(f Fault, t int64) int { return cmp.Compare(f.Start, t) })
	if i == 0 {
		return NoFault
	}
	return faults[i-1].Kind
}

// Check checks reads against writes. It is an error if two writes of one key overlap in
// time, or if a write was acknowledged before it was sent.
func Check(writes []Write, reads []Read, o Options) (Report, error) {
	r := Report{Reads: len(reads), Writes: len(writes)}
	byKey, err := versions(writes)
	if err != nil {
		return r, err
	}
	o.Faults = slices.Clone(o.Faults)
	slices.SortStableFunc(o.Faults, func(a, b Fault) int { return cmp.Compare(a.Start, b.Start) })
	vs := make([]span, len(reads)) // the versions each read may have returned
	for i, rd := range reads {
		vs[i] = place(byKey[rd.Key], rd, o, &r)
	}
	sessions(reads, vs, byKey, o.Faults, &r)
	return r, nil
}

// versions sorts the writes of each key, after an implicit first write of "" (the key
// absent before the history), and checks that they do not overlap.
func versions(writes []Write) (map[string][]Write, error) {
	byKey := map[string][]Write{}
	for _, w := range writes {
		if w.Ack < w.Start {
			return nil, fmt.Errorf("nearcheck: write of %s=%q acknowledged before it was sent", w.Key, w.Value)
		}
		if byKey[w.Key] == nil {
			byKey[w.Key] = []Write{{Key: w.Key, Start: math.MinInt64, Ack: math.MinInt64}}
		}
		byKey[w.Key] = append(byKey[w.Key], w)
	}
	for k, ws := range byKey {
		slices.SortStableFunc(ws[1:], func(a, b Write) int { return cmp.Compare(a.Start, b.Start) })
		for i := 2; i < len(ws); i++ {
			if ws[i].Start < ws[i-1].Ack {
				return nil, fmt.Errorf("nearcheck: writes of %s overlap: %q [%d, %d] and %q [%d, %d]",
					k, ws[i-1].Value, ws[i-1].Start, ws[i-1].Ack, ws[i].Value, ws[i].Start, ws[i].Ack)
			}
		}
	}
	return byKey, nil
}

// version is the place of a read in its key's writes: the index of the write whose
// value it returned (-1: none).
type version = int

// span is the versions a read may have returned: when a value was written more than
// once (the key absent, after several flushes), the oldest and newest of the writes of
// it that make the read most legal.
type span struct{ lo, hi version }

// verdict ranks a read's candidate writes: a fresh one is best, then one that MaxAge
// covers, then a stale one.
type verdict int

const (
	fresh verdict = iota
	covered
	stale
)

// place finds the write whose value rd returned, the one that makes the read most
// legal (the latest among equals), and counts rd's staleness in r.
func place(ws []Write, rd Read, o Options, r *Report) span {
	if len(ws) == 0 && rd.Value == "" {
		return span{0, 0} // a key never written, read absent
	}
	best, lo, bestV, bestBy, due := -1, -1, stale, time.Duration(math.MaxInt64), ""
	late := false // a Failed write of the value may have landed late
	for i, w := range ws {
		if w.Value != rd.Value || w.Start > rd.End {
			continue
		}
		late = late || w.Failed
		v, by, d := judge(ws, i, rd.Start, o)
		if best < 0 || v < bestV {
			lo = i
		}
		if best < 0 || v < bestV || v == bestV && by <= bestBy {
			best, bestV, bestBy, due = i, v, by, d
		}
	}
	f := fault(o.Faults, rd.Start)
	r.readsAfter(f, 1)
	if best < 0 {
		r.add(Violation{Kind: Unknown, Read: rd}, f)
		return span{-1, -1}
	}
	if late && bestBy > 0 {
		r.LateFailedWrites++
		r.countFault(f, LateFailedWrite, 1)
		return span{-1, -1}
	}
	switch bestV {
	case covered:
		r.CoveredByMaxAge++
		r.countFault(f, Covered, 1)
		r.WorstCovered = max(r.WorstCovered, bestBy)
	case stale:
		r.add(Violation{Kind: Stale, Read: rd, By: bestBy, Due: due}, f)
	}
	if bestBy > 0 {
		r.Worst = max(r.Worst, bestBy)
		r.worst(f, bestBy)
	}
	return span{lo, best}
}

// judge says whether a read that began at start may return the value of ws[i]: how long
// before start the next certain write replaced it, and whether that is within
// MaxStaleness, or within MaxAge of a silent write with no reported one past
// MaxStaleness.
func judge(ws []Write, i int, start int64, o Options) (verdict, time.Duration, string) {
	next := -1 // the next certain write
	for j := i + 1; j < len(ws); j++ {
		if !ws[j].Uncertain {
			next = j
			break
		}
	}
	if next < 0 || ws[next].Ack >= start {
		return fresh, 0, ""
	}
	by := time.Duration(start - ws[next].Ack)
	if by <= o.MaxStaleness {
		return fresh, by, ws[next].Value
	}
	if !ws[next].Silent || o.MaxAge <= 0 || by > o.MaxAge {
		return stale, by, ws[next].Value
	}
	for j := next + 1; j < len(ws) && ws[j].Ack < start; j++ {
		if !ws[j].Uncertain && !ws[j].Silent && time.Duration(start-ws[j].Ack) > o.MaxStaleness {
			return stale, time.Duration(start - ws[j].Ack), ws[j].Value
		}
	}
	return covered, by, ws[next].Value
}

// sessions checks monotonic reads and read-your-writes, per process and key.
func sessions(reads []Read, vs []span, byKey map[string][]Write, faults []Fault, r *Report) {
	type pk struct{ proc, key string }
	groups := map[pk][]int{}
	for i, rd := range reads {
		if vs[i].hi >= 0 {
			groups[pk{rd.Proc, rd.Key}] = append(groups[pk{rd.Proc, rd.Key}], i)
		}
	}
	for g, idx := range groups {
		session(g.proc, byKey[g.key], reads, vs, idx, faults, r)
	}
}

// session checks the reads idx of one process and key, whose writes are ws. A read is
// judged on the newest version it may have returned, against the oldest that each
// earlier read may have returned: only a sure regression counts.
func session(proc string, ws []Write, reads []Read, vs []span, idx []int, faults []Fault, r *Report) {
	byStart := slices.Clone(idx)
	slices.SortFunc(byStart, func(a, b int) int { return cmp.Compare(reads[a].Start, reads[b].Start) })
	byEnd := slices.Clone(idx)
	slices.SortFunc(byEnd, func(a, b int) int { return cmp.Compare(reads[a].End, reads[b].End) })
	seen, e := -1, 0 // the newest version read by a read that has ended
	own, w := -1, 0  // the newest own certain write acknowledged
	for _, i := range byStart {
		rd := reads[i]
		for ; e < len(byEnd) && reads[byEnd[e]].End < rd.Start; e++ {
			seen = max(seen, vs[byEnd[e]].lo)
		}
		// The writes of a key do not overlap: acknowledgements are in order.
		for ; w < len(ws) && ws[w].Ack < rd.Start; w++ {
			if ws[w].Proc == proc && proc != "" && !ws[w].Uncertain {
				own = w
			}
		}
		v := vs[i].hi
		if older(ws, v, seen) {
			r.add(Violation{Kind: NonMonotonic, Read: rd, Behind: seen - v, Due: ws[seen].Value}, fault(faults, rd.Start))
		}
		if older(ws, v, own) {
			r.add(Violation{Kind: MissedOwnWrite, Read: rd, Behind: own - v, Due: ws[own].Value}, fault(faults, rd.Start))
		}
	}
}

// older reports whether version v is older than version due, counting only certain
// writes: going back past writes that may have been lost is not a violation.
func older(ws []Write, v, due version) bool {
	for j := v + 1; j <= due; j++ {
		if !ws[j].Uncertain {
			return true
		}
	}
	return false
}

// String sums the report up on a few lines, the examples included.
func (r Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d reads, %d writes: %d stale, %d non-monotonic, %d missed own writes, %d unknown values; %d covered by MaxAge (worst %v); %d late failed writes; worst staleness %v",
		r.Reads, r.Writes, r.Counts[Stale], r.Counts[NonMonotonic], r.Counts[MissedOwnWrite], r.Counts[Unknown], r.CoveredByMaxAge, r.WorstCovered, r.LateFailedWrites, r.Worst)
	for _, f := range slices.Sorted(maps.Keys(r.ReadsByFault)) {
		fmt.Fprintf(&b, "\n  after %s: %d reads, %v, worst staleness %v", f, r.ReadsByFault[f], r.ByFault[f], r.WorstByFault[f])
	}
	for _, k := range []Kind{Stale, NonMonotonic, MissedOwnWrite, Unknown} {
		for _, v := range r.Examples[k] {
			fmt.Fprintf(&b, "\n  %v", v)
		}
	}
	return b.String()
}
